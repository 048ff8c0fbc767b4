"""Push-scan gaps in wrapped secrets: URL-safe base64 wrapped into decorated lines, and the line a
wrapped token is reported on.

URL-safe base64 (``-`` and ``_`` in place of ``+`` and ``/``) wrapped into quoted, indented or
``+``-joined lines was read line by line: a line holding ``-`` or ``_`` was no chunk, so the run
broke there and a token whose base64 crossed it passed. Such lines are now chunks when they look
like base64 (both letter cases), and the run is read joined.

A token found in a wrapped run was reported on the run's first line (the engine's span of a
decoded run is the whole run); it is now reported on the line that holds most of it, in the same
``file X line N: detector D`` form.

Look-alikes still pass: snake_case and kebab-case names, UUIDs, constants and rules of dashes one a
line, mixed-case identifiers in lists, YAML lists of package names.
"""

from __future__ import annotations

import base64
import gzip
import random
import unittest
import uuid
from unittest import mock

from bot_bottle.sidecar.git_gate import scan as scan_module
from bot_bottle.sidecar.git_gate import split
from bot_bottle.sidecar.git_gate.piece import Piece
from bot_bottle.sidecar.git_gate.scan import GitFinding, default_detector, report, scan, wrapped_hits

GHP = "ghp_" + "Wq3Zr8Tn5Lm2Xv7Kc4Bp9Hd6Fs1Jg0Ya5UeQ2"
COMMIT = "c" * 40


def chunks(text: str, width: int) -> list[str]:
    return [text[i:i + width] for i in range(0, len(text), width)]


def findings(files: dict[str, str]) -> list[GitFinding]:
    pieces = [Piece(COMMIT, "lines", text, path=path, line=1) for path, text in files.items()]
    return scan(pieces, default_detector({}))


def urlsafe_payload() -> tuple[str, int, int]:
    """URL-safe base64 of bytes holding a GitHub token among bytes whose base64 is dense in "-"
    and "_" (every line of it wrapped holds some, and both letter cases), and where the token's
    base64 starts and ends."""
    filler = b"???~~~" * 20  # "Pz8_fn5-" in URL-safe base64
    before = filler + b"\ngithub_token = "
    raw = before + GHP.encode() + b"\n" + filler
    encoded = base64.urlsafe_b64encode(raw).decode()
    return encoded, len(before) * 4 // 3, -(-(len(before) + len(GHP)) * 4 // 3)


class UrlSafeWrappedTest(unittest.TestCase):
    def setUp(self) -> None:
        self.encoded, _start, _end = urlsafe_payload()
        self.assertIn("-", self.encoded)
        self.assertIn("_", self.encoded)

    def assert_token(self, files: dict[str, str]) -> None:
        found = findings(files)
        self.assertTrue(any(f.detector == "github-token (base64)" for f in found), found)
        self.assertNotIn(GHP, "\n".join(report(found)))

    def test_quoted_lines_in_python(self) -> None:
        for width in (20, 24, 40, 60):
            with self.subTest(width=width):
                body = "".join(f'    "{c}"\n' for c in chunks(self.encoded, width))
                self.assert_token({"blob.py": f"import base64\n\nDATA = (\n{body})\n"})

    def test_first_chunk_on_the_assignment_line(self) -> None:
        parts = chunks(self.encoded, 40)
        body = f'DATA = "{parts[0]}" \\\n' + "".join(f'    "{c}" \\\n' for c in parts[1:-1]) + f'    "{parts[-1]}"\n'
        [run] = split.wrapped_runs(body)
        self.assertEqual(run.text, self.encoded)
        self.assert_token({"cont.py": body})

    def test_an_indented_yaml_block(self) -> None:
        for width in (24, 40, 76):
            with self.subTest(width=width):
                body = "".join(f"    {c}\n" for c in chunks(self.encoded, width))
                self.assert_token({"values.yaml": f"secret:\n  data: |\n{body}other: 1\n"})

    def test_plus_joined_javascript(self) -> None:
        for width in (24, 40, 48):
            with self.subTest(width=width):
                body = " +\n  ".join(f"'{c}'" for c in chunks(self.encoded, width))
                self.assert_token({"blob.js": f"const data =\n  {body};\n"})

    def test_a_yaml_list_of_chunks(self) -> None:
        body = "".join(f"  - {c}\n" for c in chunks(self.encoded, 40))
        self.assert_token({"list.yaml": f"parts:\n{body}"})

    def test_appended_line_by_line(self) -> None:
        body = 'B = ""\n' + "".join(f'B += "{c}"\n' for c in chunks(self.encoded, 32))
        self.assert_token({"b.py": body})

    def test_a_bare_block(self) -> None:
        self.assert_token({"blob.txt": "\n".join(chunks(self.encoded, 40)) + "\n"})

    def test_compressed_data_in_quoted_lines(self) -> None:
        rnd = random.Random(1)
        config = "".join(f"line {rnd.random()}\n" for _ in range(40)) + f"github_token = {GHP}\n"
        encoded = base64.urlsafe_b64encode(gzip.compress(config.encode(), mtime=0)).decode()
        for width in (60, 76):
            with self.subTest(width=width):
                body = "".join(f'    "{c}"\n' for c in chunks(encoded, width))
                found = findings({"blob.py": f"X = (\n{body})\n"})
                self.assertIn("github-token (base64+gzip)", {f.detector for f in found})

    def test_the_run_is_the_url_safe_text(self) -> None:
        body = "".join(f'    "{c}",\n' for c in chunks(self.encoded, 40))
        [run] = split.wrapped_runs(f"DATA = [\n{body}]\n")
        self.assertEqual(run.text, self.encoded)


class UrlSafeLookAlikesTest(unittest.TestCase):
    def test_names_uuids_and_rules_are_no_runs(self) -> None:
        rnd = random.Random(5)
        texts = {
            "snake": "".join(f'    "first_argument_with_a_long_name_{n}",\n' for n in range(30)),
            "screaming": "".join(f"    SOME_CONSTANT_NAME_NUMBER_{n},\n" for n in range(30)),
            "kebab": "".join(f"  - some-package-name-here-{n}\n" for n in range(30)),
            "uuids": "".join(f'  "{uuid.UUID(int=rnd.getrandbits(128))}",\n' for _ in range(30)),
            "upper uuids": "".join(f"  {str(uuid.UUID(int=rnd.getrandbits(128))).upper()}\n" for _ in range(30)),
            "rules": "".join("    " + "-" * (20 + n) + "\n" for n in range(10)) + "_" * 40 + "\n" + "_" * 40 + "\n",
            "options": "".join(f"    --some-long-option-name-{n} \\\n" for n in range(20)),
            "css": "".join(f'  "btn-primary-large-rounded-{n}",\n' for n in range(20)),
        }
        for name, text in texts.items():
            with self.subTest(name):
                self.assertEqual(split.wrapped_runs(text), [])
                self.assertEqual(findings({"f.txt": text}), [])

    def test_mixed_case_identifiers_and_code_pass(self) -> None:
        names = "".join(f'    "test_HTTPServer_handlesRequest_{n}",\n' for n in range(40))
        calls = "".join(f"    self.assertEqual_{n}(getHTTPResponse_v2, MyClass_method)\n" for n in range(40))
        yaml = "".join(f"  - name: my-Service-Name-{n}\n    image: registry/My_Image-{n}:latest\n" for n in range(40))
        jwt_like = "".join(f'  "{n}": "not-a_Secret-Value_{n}",\n' for n in range(40))
        self.assertEqual(findings({"names.py": names, "calls.py": calls, "svc.yaml": yaml, "k.json": jwt_like}), [])

    def test_random_url_safe_ids_one_a_line_pass(self) -> None:
        rnd = random.Random(9)
        ids = "".join(f'  "{base64.urlsafe_b64encode(rnd.randbytes(16)).decode().rstrip("=")}",\n' for _ in range(300))
        self.assertEqual(findings({"ids.py": ids}), [])


class WrappedTokenLineTest(unittest.TestCase):
    """The line a token in a wrapped run is reported on: the one holding most of its base64."""

    @staticmethod
    def expected_line(start: int, end: int, width: int, first: int) -> int:
        overlaps = {first + n: min(end, (n + 1) * width) - max(start, n * width)
                    for n in range(start // width, (end - 1) // width + 1)}
        return max(overlaps, key=lambda line: overlaps[line])

    def test_standard_base64_in_a_long_run(self) -> None:
        config = ("x" * 300 + "\n") * 2 + f"github_token = {GHP}\n" + ("y" * 300 + "\n") * 2
        encoded = base64.b64encode(config.encode()).decode()
        before = len(("x" * 300 + "\n") * 2 + "github_token = ")
        start, end = before * 4 // 3, -(-(before + len(GHP)) * 4 // 3)
        for width in (16, 40, 60, 76):
            with self.subTest(width=width):
                body = "".join(f'    "{c}"\n' for c in chunks(encoded, width))
                found = findings({"list.py": f"import os\nDATA = (\n{body})\n"})
                lines = {f.line for f in found if f.detector == "github-token (base64)"}
                self.assertEqual(lines, {self.expected_line(start, end, width, 3)}, found)

    def test_a_token_deep_in_a_long_run(self) -> None:
        head = "".join(f"setting_{n} = {n * 7919 % 10007}\n" for n in range(900))
        config = head + f"github_token = {GHP}\n" + "z = 1\n" * 300
        encoded = base64.b64encode(config.encode()).decode()
        before = len(head + "github_token = ")
        start, end = before * 4 // 3, -(-(before + len(GHP)) * 4 // 3)
        body = "".join(f'    "{c}"\n' for c in chunks(encoded, 76))
        found = findings({"big.py": f"BLOB = (\n{body})\n"})
        self.assertGreater(len(encoded), 16 * 1024)
        self.assertEqual({f.line for f in found if f.detector == "github-token (base64)"},
                         {self.expected_line(start, end, 76, 2)}, found)

    def test_past_the_budget_the_line_the_run_starts_on(self) -> None:
        config = ("x" * 300 + "\n") * 2 + f"github_token = {GHP}\n" + ("y" * 300 + "\n") * 2
        body = "".join(f'    "{c}"\n' for c in chunks(base64.b64encode(config.encode()).decode(), 60))
        with mock.patch.object(scan_module, "NARROW_BUDGET", 100):
            found = findings({"list.py": f"DATA = (\n{body})\n"})
        self.assertEqual({f.line for f in found if f.detector == "github-token (base64)"}, {2}, found)

    def test_url_safe_base64_and_the_message(self) -> None:
        encoded, start, end = urlsafe_payload()
        body = "".join(f"    {c}\n" for c in chunks(encoded, 24))
        found = findings({"values.yaml": f"secret:\n  data: |\n{body}other: 1\n"})
        line = self.expected_line(start, end, 24, 3)
        self.assertEqual({f.line for f in found if f.detector == "github-token (base64)"}, {line}, found)
        self.assertIn(f"commit {COMMIT[:12]}: file values.yaml line {line}: detector github-token (base64)",
                      "\n".join(report(found)))

    def test_a_plain_token_cut_over_quoted_lines(self) -> None:
        text = ("KEY = (\n" + "".join(f'    "{c}"\n' for c in ["Ab3Xy9Kq2Lp/ghp_", GHP[4:30], GHP[30:] + "+Q" * 10])
                + ")\n")
        hits = wrapped_hits(text, default_detector({}))
        # GHP[4:30]: 26 of its 40 characters, on the second chunk's line (line 3).
        self.assertEqual({(h.detector, h.line) for h in hits if h.detector == "github-token"}, {("github-token", 3)})

    def test_a_token_on_one_line_keeps_that_line(self) -> None:
        encoded = base64.b64encode(b"z" * 30 + f"\ntoken={GHP}\n".encode() + b"w" * 300).decode()
        parts = chunks(encoded, 200)
        text = "X = (\n" + "".join(f'    "{c}"\n' for c in parts) + ")\n"
        hits = [h for h in wrapped_hits(text, default_detector({})) if h.detector == "github-token (base64)"]
        self.assertEqual({h.line for h in hits}, {2}, hits)


if __name__ == "__main__":
    unittest.main()
