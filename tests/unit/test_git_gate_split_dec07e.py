"""Push-scan gaps: the bottle's own secrets cut into parts, and base64 wrapped into decorated lines.

An own secret (a long random token) cut into string pieces with names, comments or keys between
them, or put half in one file and half in another, or in two commits of one push, passed: the
detectors saw no piece whole and the separator search (letters and digits run together) was
broken by the names between. Parts are now remembered across the push and the push is refused
when they spell the value, naming every file and line and the secret's name, never the value.

Base64 wrapped into lines that are quoted, indented or joined with ``+`` was read line by line:
a token whose base64 crosses a line break passed. Such runs are now read joined.

Look-alikes still pass: lockfiles, notebooks with images, UUID lists, other split strings, a
secret's prefix alone, short or word-like own secrets next to ordinary text.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import shutil
import unittest
import uuid

from bot_bottle.sidecar.git_gate import patch, split
from bot_bottle.sidecar.git_gate.scan import PatternDetector, default_detector, scan
from tests._requires import requires
from tests.unit.git_gate_repo_helper import PushRepos, push_repos

TOKEN = "Zq7Kx2Lm9Pw4Rt8Vb3Nc6Hy1Jd5Fs0Ga7Ue2Wi4Q"  # 40 random characters
GHP = "ghp_" + "Wq3Zr8Tn5Lm2Xv7Kc4Bp9Hd6Fs1Jg0Ya5UeQ2"
KNOWN = {"API_TOKEN": TOKEN}
HAS_GIT = shutil.which("git") is not None
SPLIT = "known-secret:API_TOKEN (split)"


def chunks(text: str, width: int) -> list[str]:
    return [text[i:i + width] for i in range(0, len(text), width)]


@requires(HAS_GIT, "git")
class SplitOwnSecretPushTest(unittest.TestCase):
    """A real push through the hook, with the shared engine knowing the bottle's token."""

    def setUp(self) -> None:
        self.repos: PushRepos = push_repos(self)
        self.detector = default_detector(KNOWN)

    def push(self, *commits: dict[str, str]) -> tuple[str, int, str]:
        new = ""
        for number, files in enumerate(commits):
            new = self.repos.commit(files, f"change {number}")
        code, out = self.repos.push_main(new, self.detector)
        return new, code, out

    def assert_split(self, out: str, code: int, *places: str) -> None:
        self.assertEqual(code, 1, out)
        for place in places:
            self.assertIn(f"{place}: detector {SPLIT}", out)
        self.assertNotIn(TOKEN, out)
        for piece in chunks(TOKEN, 8):
            self.assertNotIn(piece, out)

    def test_concatenation_with_names_between(self) -> None:
        source = (f'first = "{TOKEN[:20]}"\n'
                  "unrelated = compute(42)\n"
                  f'second = "{TOKEN[20:]}"\n'
                  "token = first + second\n")
        new, code, out = self.push({"conf.py": source})
        self.assert_split(out, code, f"commit {new[:12]}: file conf.py line 1",
                          f"commit {new[:12]}: file conf.py line 3")

    def test_implicit_concatenation_with_comments(self) -> None:
        parts = chunks(TOKEN, 8)
        source = "TOKEN = (\n" + "".join(f'    "{p}"  # part {n}\n' for n, p in enumerate(parts)) + ")\n"
        new, code, out = self.push({"keys.py": source})
        self.assert_split(out, code, *(f"commit {new[:12]}: file keys.py line {n + 2}" for n in range(len(parts))))

    def test_a_dict_of_pieces_with_keys(self) -> None:
        parts = chunks(TOKEN, 10)
        source = "const k = {\n" + "".join(f"  p{n}: '{p}',\n" for n, p in enumerate(parts)) + "};\n"
        _new, code, out = self.push({"k.js": source})
        self.assert_split(out, code, "file k.js line 2", "file k.js line 5")

    def test_half_in_each_of_two_files(self) -> None:
        new, code, out = self.push({"a.env": f"PART_A={TOKEN[:20]}\n", "b.env": f"PART_B={TOKEN[20:]}\n"})
        self.assert_split(out, code, f"commit {new[:12]}: file a.env line 1", f"commit {new[:12]}: file b.env line 1")

    def test_half_in_each_of_two_commits(self) -> None:
        first = self.repos.commit({"one.txt": f"id: {TOKEN[:22]}\n"}, "one")
        second = self.repos.commit({"two.txt": f"more\nid2: {TOKEN[22:]}\n"}, "two")
        code, out = self.repos.push_main(second, self.detector)
        self.assert_split(out, code, f"commit {first[:12]}: file one.txt line 1",
                          f"commit {second[:12]}: file two.txt line 2")

    def test_a_piece_in_the_commit_message(self) -> None:
        new = self.repos.commit({"x.txt": f"value {TOKEN[:24]}\n"}, f"add the rest: {TOKEN[24:]}")
        code, out = self.repos.push_main(new, self.detector)
        self.assert_split(out, code, f"commit {new[:12]}: file x.txt line 1",
                          f"commit {new[:12]}: commit message line 1")

    def test_shell_continuation_and_a_list_of_pieces(self) -> None:
        shell = f"export API=\\\n{TOKEN[:13]}\\\n{TOKEN[13:27]}\\\n{TOKEN[27:]}\n"
        listed = "PIECES = [\n" + "".join(f'    "{p}",  # {n}\n' for n, p in enumerate(chunks(TOKEN, 10))) + "]\n"
        _new, code, out = self.push({"run.sh": shell, "pieces.py": listed})
        self.assertEqual(code, 1, out)
        self.assertIn("file pieces.py line 2", out)
        self.assertNotIn(TOKEN, out)

    def test_a_hex_secret_and_a_long_one(self) -> None:
        hexkey = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
        long_key = ("sk-ant-api03-" + "Ab3dEf6hIj9lMn2pQr5tUv8xYz1bCd4fGh7jKl0nOp3rSt6vWx9zAb2dEf5hIj8lMn1pQr4t"
                    + "Uv7xYz0bCd3fG")
        self.detector = default_detector({"HEX": hexkey, "LONG": long_key})
        new, code, out = self.push({"h1.txt": f"a={hexkey[:20]}\n", "h2.txt": f"b={hexkey[20:]}\n",
                                    "l.py": "".join(f"k{n} = '{p}'\n" for n, p in enumerate(chunks(long_key, 34)))})
        self.assertEqual(code, 1, out)
        self.assertIn(f"commit {new[:12]}: file h2.txt line 1: detector known-secret:HEX (split)", out)
        self.assertIn(f"commit {new[:12]}: file l.py line 3: detector known-secret:LONG (split)", out)
        self.assertNotIn(hexkey[:12], out)

    def test_the_builtin_detector_too(self) -> None:
        self.detector = PatternDetector(known=KNOWN)  # type: ignore[assignment]
        new, code, out = self.push({"a.txt": f"{TOKEN[:20]}\n", "b.txt": f"{TOKEN[20:]}\n"})
        self.assert_split(out, code, f"commit {new[:12]}: file a.txt line 1")

    # ---------------------------------------------------------------- look-alikes

    def test_a_prefix_alone_passes(self) -> None:
        _new, code, out = self.push({"log.txt": f"token starts {TOKEN[:24]}...\n",
                                     "doc.md": f"ends with ...{TOKEN[-8:]}\n"})
        self.assertEqual(code, 0, out)

    def test_other_split_strings_pass(self) -> None:
        rnd = random.Random(7)
        other = "".join(rnd.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789") for _ in range(40))
        source = "".join(f'part{n} = "{p}"\n' for n, p in enumerate(chunks(other, 8)))
        _new, code, out = self.push({"other.py": source, "more.py": f'x = "{other[:20]}" + y + "{other[20:]}"\n'})
        self.assertEqual(code, 0, out)

    def test_short_and_word_like_own_secrets_do_not_piece_together(self) -> None:
        self.detector = default_detector({"PIN": "1234", "WORDS": "password12345678", "PHRASE": "correcthorsebattery"})
        text = ("password = input()\nassert len(password) >= 8\nnumbers = '12345678'\n"
                "correct = horse()\nthe battery is low: 1234\n")
        _new, code, out = self.push({"t.py": text, "u.py": "pw = 'password1'\nn = 'word12345'\n"})
        self.assertEqual(code, 0, out)

    def test_lockfile_notebook_and_uuids_pass(self) -> None:
        rnd = random.Random(3)
        lock = {"packages": {f"node_modules/p{n}": {
            "version": "1.0.0", "resolved": f"https://registry.npmjs.org/p{n}/-/p{n}-1.0.0.tgz",
            "integrity": "sha512-" + base64.b64encode(hashlib.sha512(str(n).encode()).digest()).decode()}
            for n in range(300)}}
        png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + rnd.randbytes(6000)).decode()
        notebook = {"cells": [{"cell_type": "code", "outputs": [{"data": {"image/png": png}}],
                               "source": ["import numpy\n", "plot()\n"]},
                              {"cell_type": "code", "outputs": [{"data": {"image/png": [
                                  line + "\n" for line in chunks(png, 76)]}}]}]}
        uuids = "IDS = [\n" + "".join(f'    "{uuid.UUID(int=rnd.getrandbits(128))}",\n' for _ in range(400)) + "]\n"
        hashes = "".join(f'  "{hashlib.sha256(str(n).encode()).hexdigest()}",\n' for n in range(200))
        _new, code, out = self.push({"package-lock.json": json.dumps(lock, indent=2), "plot.ipynb": json.dumps(
            notebook, indent=1), "ids.py": uuids, "hashes.txt": hashes})
        self.assertEqual(code, 0, out)

    def test_hashes_and_ids_next_to_a_hex_secret_pass(self) -> None:
        self.detector = default_detector({"HEX": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"})
        rnd = random.Random(11)
        lines = "".join(f"{rnd.getrandbits(160):040x} {uuid.UUID(int=rnd.getrandbits(128))}\n" for _ in range(3000))
        _new, code, out = self.push({"hashes.txt": lines, "doc.md": "key starts 9f86d081884c7d65...\n"})
        self.assertEqual(code, 0, out)

    def test_source_with_argument_lists_passes(self) -> None:
        source = ("result = some_function_with_a_long_name(\n"
                  "    first_argument_with_a_long_name,\n"
                  "    second_argument_with_a_long_name,\n"
                  "    third_argument_with_a_long_name,\n"
                  ")\n")
        _new, code, out = self.push({"calls.py": source * 20})
        self.assertEqual(code, 0, out)


@requires(HAS_GIT, "git")
class WrappedBase64PushTest(unittest.TestCase):
    """A token in base64 wrapped into decorated lines, pushed through the hook."""

    def setUp(self) -> None:
        self.repos: PushRepos = push_repos(self)
        self.detector = default_detector(KNOWN)
        config = ("x" * 90 + "\n") * 2 + f"github_token = {GHP}\n" + ("y" * 90 + "\n") * 2
        self.encoded = base64.b64encode(config.encode()).decode()

    def push(self, files: dict[str, str]) -> tuple[str, int, str]:
        new = self.repos.commit(files, "add")
        code, out = self.repos.push_main(new, self.detector)
        return new, code, out

    def assert_token(self, files: dict[str, str], path: str) -> None:
        new, code, out = self.push(files)
        self.assertEqual(code, 1, out)
        self.assertIn(f"commit {new[:12]}: file {path} line", out)
        self.assertIn("detector github-token (base64)", out)
        self.assertNotIn(GHP, out)

    def test_quoted_lines_in_python(self) -> None:
        body = "".join(f'    "{c}"\n' for c in chunks(self.encoded, 60))
        self.assert_token({"blob.py": f"import base64\n\nDATA = (\n{body})\n"}, "blob.py")

    def test_first_chunk_on_the_assignment_line(self) -> None:
        parts = chunks(self.encoded, 64)
        body = f'DATA = "{parts[0]}" \\\n' + "".join(f'    "{c}" \\\n' for c in parts[1:-1]) + f'    "{parts[-1]}"\n'
        self.assert_token({"cont.py": body}, "cont.py")

    def test_an_indented_yaml_block(self) -> None:
        body = "".join(f"    {c}\n" for c in chunks(self.encoded, 76))
        self.assert_token({"values.yaml": f"secret:\n  data: |\n{body}other: 1\n"}, "values.yaml")

    def test_plus_joined_javascript(self) -> None:
        body = " +\n  ".join(f"'{c}'" for c in chunks(self.encoded, 48))
        self.assert_token({"blob.js": f"const data =\n  {body};\n"}, "blob.js")

    def test_the_line_of_the_token(self) -> None:
        parts = chunks(self.encoded, 60)
        body = "".join(f'    "{c}",\n' for c in parts)
        new, code, out = self.push({"list.py": f"DATA = [\n{body}]\n"})
        self.assertEqual(code, 1, out)
        lines = {int(line.split(" line ")[1].split(":")[0]) for line in out.splitlines()
                 if "github-token (base64)" in line}
        # A line of the run (its chunks are on lines 2 to len(parts) + 1), where the detector's
        # span of the decoded run starts.
        self.assertTrue(lines, out)
        self.assertTrue(all(2 <= line <= len(parts) + 1 for line in lines), out)

    def test_own_secret_in_base64_assigned_line_by_line(self) -> None:
        encoded = base64.b64encode(f"api_token={TOKEN}".encode()).decode()
        body = 'B = ""\n' + "".join(f'B += "{c}"\n' for c in chunks(encoded, 16))
        _new, code, out = self.push({"b.py": body})
        self.assertEqual(code, 1, out)
        self.assertIn("known-secret:API_TOKEN", out)
        self.assertNotIn(TOKEN, out)


class SplitSearchTest(unittest.TestCase):
    def test_only_random_looking_values(self) -> None:
        self.assertTrue(split.random_looking(TOKEN))
        self.assertTrue(split.random_looking("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"))
        for value in ("1234", "correcthorsebatterystaple", "aaaaaaaaaaaaaaaa1111", "ABCDEFGH"):
            self.assertFalse(split.random_looking(value), value)

    def test_repr_names_only(self) -> None:
        search = split.SplitSearch([("API_TOKEN", TOKEN)])
        self.assertNotIn(TOKEN[:8], repr(search))
        self.assertIn("API_TOKEN", repr(search))

    def test_parts_in_any_order_and_the_tolerance(self) -> None:
        search = split.SplitSearch([("T", TOKEN)])
        search.feed(f"b = '{TOKEN[20:36]}'", "c1", "lines", "b.py", 5)
        search.feed(f"a = '{TOKEN[:20]}'", "c1", "lines", "a.py", 1)
        found = search.found()
        self.assertEqual([name for name, _ in found], ["T"])
        self.assertEqual({(p.path, p.line) for p in found[0][1]}, {("a.py", 1), ("b.py", 5)})
        short = split.SplitSearch([("T", TOKEN)])
        short.feed(TOKEN[:16], "c", "lines", "a", 1)
        short.feed(TOKEN[20:32], "c", "lines", "b", 1)
        self.assertEqual(short.found(), [])

    def test_decoys_past_the_budget_count_as_the_value(self) -> None:
        search = split.SplitSearch([("T", TOKEN)])
        search.feed("x\n" + "Zq7K " * (split.GROW_BUDGET + 5), "c", "lines", "flood.txt", 3)
        self.assertEqual([(name, [(p.path, p.line) for p in places]) for name, places in search.found()],
                         [("T", [("flood.txt", 3)])])

    def test_a_value_found_whole_is_left_to_the_detectors(self) -> None:
        search = split.SplitSearch([("T", TOKEN)])
        search.feed(f"x = {TOKEN}\ny = {TOKEN[:12]}", "c", "lines", "a", 1)
        self.assertEqual(search.found(), [])

    def test_scan_of_a_patch(self) -> None:
        diff = ("diff --git a/f.py b/f.py\nnew file mode 100644\n--- /dev/null\n+++ b/f.py\n@@ -0,0 +1,3 @@\n"
                f'+a1 = "{TOKEN[:16]}"\n+b2 = "{TOKEN[16:30]}"\n+c3 = "{TOKEN[30:]}"\n')
        findings = scan(patch.parse_patch("c" * 40, diff), default_detector(KNOWN))
        self.assertEqual({(f.path, f.line, f.detector) for f in findings},
                         {("f.py", line, SPLIT) for line in (1, 2, 3)})


class WrappedRunsTest(unittest.TestCase):
    def test_runs_and_lines(self) -> None:
        encoded = base64.b64encode(bytes(range(120))).decode()
        text = "x = 1\nDATA = (\n" + "".join(f'    "{c}"\n' for c in chunks(encoded, 40)) + ")\n"
        [run] = split.wrapped_runs(text)
        self.assertEqual(run.text, encoded)
        self.assertEqual(run.lines, (2, 3, 4, 5))
        self.assertEqual(run.line_of(45), 3)

    def test_bare_blocks_uuids_and_code_are_not_runs(self) -> None:
        encoded = base64.b64encode(bytes(range(120))).decode()
        self.assertEqual(split.wrapped_runs("\n".join(chunks(encoded, 40)) + "\n"), [])
        ids = "".join(f'  "{uuid.UUID(int=n * 7919)}",\n' for n in range(1, 20))
        self.assertEqual(split.wrapped_runs(ids), [])
        self.assertEqual(split.wrapped_runs("def f(x):\n    return x + 1\n\nprint(f(2))\n"), [])


if __name__ == "__main__":
    unittest.main()
