"""Push-scan gaps: own secrets cut into short quoted parts, one-case URL-safe base64 lines that
wrapping puts next to a token, and YAML's rule for a list's dash.

- An own secret (a random token) cut into string literals of five to eight characters, one a line
  with comments or names between, or over two files, passed: no part was long enough for the
  search of parts. Quoted literals of those lengths are now looked up whole in a table of the
  values' stretches; a stretch counts only from the length at which the value's alphabet does not
  spell it by chance (five characters of a mixed-case token, six of lower-case letters and digits,
  eight of hex digits), and only for values that change kind of character like a generated one.
- A token's own URL-safe base64 never holds "-" or "_"; the bytes around it can ("~" is "fn5-"),
  and a narrow line holding a few of the token's characters and such bytes in one letter case was
  no chunk: the run broke there and the token passed. Such a line is now read among lines of its
  width at least one of which counts on its own.
- A "-" before a chunk is a YAML list's only before a blank: ``-abc`` is the text "-abc" (PyYAML
  reads it so), and its dash is no longer dropped from the last line of a run, nor taken as a
  list's before a quoted chunk.

Look-alikes still pass: short string concatenation, SQL built from parts, i18n strings, hashes in
lists, UUIDs, word-like own secrets, lists of names.
"""

from __future__ import annotations

import base64
import hashlib
import random
import string
import unittest
import uuid

import yaml

from bot_bottle.sidecar.git_gate import split
from bot_bottle.sidecar.git_gate.piece import Piece
from bot_bottle.sidecar.git_gate.scan import GitFinding, default_detector, report, scan

TOKEN = "Zq7Kx2Lm9Pw4Rt8Vb3Nc6Hy1Jd5Fs0Ga7Ue2Wi4Q"  # 40 random characters
GHP = "ghp_" + "Wq3Zr8Tn5Lm2Xv7Kc4Bp9Hd6Fs1Jg0Ya5UeQ2"
HEX = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
COMMIT = "c" * 40
SPLIT = "known-secret:API_TOKEN (split)"


def chunks(text: str, width: int) -> list[str]:
    return [text[i:i + width] for i in range(0, len(text), width)]


def findings(files: dict[str, str], known: dict[str, str] | None = None) -> list[GitFinding]:
    pieces = [Piece(COMMIT, "lines", text, path=path, line=1) for path, text in files.items()]
    return scan(pieces, default_detector(known or {}))


def split_places(found: list[GitFinding], detector: str = SPLIT) -> set[tuple[str | None, int | None]]:
    return {(f.path, f.line) for f in found if f.detector == detector}


class ShortQuotedPartsTest(unittest.TestCase):
    def assert_split(self, found: list[GitFinding], value: str, *places: tuple[str, int]) -> None:
        self.assertEqual(split_places(found), set(places), found)
        shown = "\n".join(report(found))
        self.assertNotIn(value, shown)
        for piece in chunks(value, 5):
            if len(piece) >= 4:
                self.assertNotIn(piece, shown)

    def test_implicit_concatenation_with_comments(self) -> None:
        for width in (5, 6, 7, 8):
            with self.subTest(width=width):
                parts = chunks(TOKEN, width)
                source = "TOKEN = (\n" + "".join(f'    "{p}"  # part {n}\n' for n, p in enumerate(parts)) + ")\n"
                found = findings({"keys.py": source}, {"API_TOKEN": TOKEN})
                self.assert_split(found, TOKEN, *(("keys.py", n + 2) for n in range(len(parts))))

    def test_names_between_the_parts(self) -> None:
        for width in (5, 6, 7):
            with self.subTest(width=width):
                parts = chunks(TOKEN, width)
                source = "".join(f"p{n} = '{p}'\n" for n, p in enumerate(parts))
                source += "token = " + " + ".join(f"p{n}" for n in range(len(parts))) + "\n"
                found = findings({"conf.py": source}, {"API_TOKEN": TOKEN})
                self.assert_split(found, TOKEN, *(("conf.py", n + 1) for n in range(len(parts))))

    def test_a_github_token_after_its_prefix(self) -> None:
        parts = ["ghp_", *chunks(GHP[4:], 5)]
        source = "KEY = (\n" + "".join(f'    "{p}"  // {n}\n' for n, p in enumerate(parts)) + ")\n"
        found = findings({"k.js": source}, {"API_TOKEN": GHP})
        # The last part, two characters, is no part: the tolerance.
        self.assert_split(found, GHP, *(("k.js", n + 2) for n, p in enumerate(parts) if len(p) >= split.MIN_END))

    def test_a_prefix_and_a_short_rest_count_with_the_parts(self) -> None:
        # 36 characters after "ghp_" in parts of eight leave four: with the prefix, more than the
        # tolerance, unless the value's first and last characters count as parts too.
        parts = ["ghp_", *chunks(GHP[4:], 8)]
        source = "KEY = (\n" + "".join(f'    "{p}"  # {n}\n' for n, p in enumerate(parts)) + ")\n"
        found = findings({"k.py": source}, {"API_TOKEN": GHP})
        self.assert_split(found, GHP, *(("k.py", n + 2) for n in range(len(parts))))

    def test_a_prefix_alone_is_no_part(self) -> None:
        source = 'PREFIX = "ghp_"\nSUFFIX = "UeQ2"\n' + f'MIDDLE = "{GHP[10:18]}"\n'
        self.assertEqual(findings({"p.py": source}, {"API_TOKEN": GHP}), [])

    def test_parts_over_two_files(self) -> None:
        parts = chunks(TOKEN, 6)
        half = len(parts) // 2
        first = "".join(f'a{n} = "{p}"\n' for n, p in enumerate(parts[:half]))
        second = "".join(f"b{n} = `{p}`;\n" for n, p in enumerate(parts[half:]))
        found = findings({"a.py": first, "b.js": second}, {"API_TOKEN": TOKEN})
        expected = {("a.py", n + 1) for n in range(half)} | {("b.js", n + 1) for n in range(len(parts) - half)}
        self.assertEqual(split_places(found), expected, found)

    def test_a_list_of_short_pieces_in_json(self) -> None:
        body = ",\n".join(f'    "{p}"' for p in chunks(TOKEN, 5))
        found = findings({"pieces.json": f'{{"pieces": [\n{body}\n]}}\n'}, {"API_TOKEN": TOKEN})
        self.assertEqual(len(split_places(found)), 8, found)

    def test_hex_values_need_eight_characters(self) -> None:
        eight = "".join(f'    "{p}"  # {n}\n' for n, p in enumerate(chunks(HEX, 8)))
        found = findings({"h.py": f"H = (\n{eight})\n"}, {"API_TOKEN": HEX})
        self.assertEqual(len(split_places(found)), 5, found)
        seven = "".join(f'    "{p}"  # {n}\n' for n, p in enumerate(chunks(HEX, 7)))
        self.assertEqual(findings({"h.py": f"H = (\n{seven})\n"}, {"API_TOKEN": HEX}), [])

    def test_short_part_lengths(self) -> None:
        self.assertEqual(split.short_part(TOKEN), 5)
        self.assertEqual(split.short_part("k3j9x0q2m7v4b8n1z6c5h2"), 6)
        self.assertEqual(split.short_part(HEX), 8)
        self.assertEqual(split.short_part(HEX.upper()), 8)

    def test_a_literal_past_the_budget_counts_as_the_value(self) -> None:
        text = "".join(f'x{n} = "{TOKEN[:6]}"\n' for n in range(split.GROW_BUDGET + 5))
        search = split.SplitSearch([("API_TOKEN", TOKEN)])
        search.feed(text, COMMIT, "lines", "decoys.py", 1)
        self.assertEqual([name for name, _places in search.found()], ["API_TOKEN"])


class ShortQuotedPartsLookAlikesTest(unittest.TestCase):
    """Ordinary code full of short quoted strings, with random own secrets configured."""

    KNOWN = {
        "API_TOKEN": TOKEN,
        "GH": GHP,
        "HEX": HEX,
        "B36": "k3j9x0q2m7v4b8n1z6c5h2w8",
    }

    def test_ordinary_code_passes(self) -> None:
        rnd = random.Random(11)
        concat = "".join(f'label_{n} = "a" + "b" + str({n}) + "_" + "suffix"\n' for n in range(50))
        sql = "".join(f'q{n} = "SELECT " + ", ".join(cols) + " FROM " + "users" + " WHERE id = %s"\n'
                      for n in range(30))
        i18n = "".join(f'    "{w}": _("{w.title()}"),\n' for w in
                       ("hello", "World", "Save", "Cancel", "Ab3dE", "Delete", "Open", "Close", "Error"))
        hashes = "".join(f'    "{hashlib.sha1(str(n).encode()).hexdigest()[:8]}",\n' for n in range(200))
        uuids = "".join(f'  "{uuid.UUID(int=rnd.getrandbits(128))}",\n' for _ in range(100))
        alphabet = string.ascii_letters + string.digits
        short_ids = "".join(f"    '{''.join(rnd.choice(alphabet) for _ in range(6))}',\n" for _ in range(500))
        files = {"concat.py": concat, "sql.py": sql, "i18n.py": f"T = {{\n{i18n}}}\n",
                 "hashes.py": f"H = [\n{hashes}]\n", "uuids.py": f"U = [\n{uuids}]\n",
                 "ids.py": f"I = [\n{short_ids}]\n"}
        self.assertEqual(findings(files, self.KNOWN), [])

    def test_a_few_stretches_of_a_value_do_not_spell_it(self) -> None:
        parts = chunks(TOKEN, 5)
        source = "".join(f'p{n} = "{p}"\n' for n, p in enumerate(parts[:4]))  # half of it
        self.assertEqual(findings({"half.py": source}, self.KNOWN), [])

    def test_word_like_own_secrets_do_not_piece_together(self) -> None:
        known = {"WORDS": "password12345678", "SEASON": "admin2024Password!"}
        source = ("a = 'passwo'\nb = 'rd1234'\nc = '5678'\nd = 'password1'\ne = 'word12345'\n"
                  "f = 'admin2'\ng = '024Pas'\nh = 'sword!'\n")
        self.assertEqual(findings({"u.py": source}, known), [])

    def test_single_kind_pieces_of_a_value_are_no_parts(self) -> None:
        value = "abcdefgh12345678ABCDEFGH"
        self.assertFalse(split._mixed_throughout(value))
        self.assertTrue(split._mixed_throughout(TOKEN))
        source = "".join(f'x{n} = "{p}"\n' for n, p in enumerate(chunks(value, 6)))
        self.assertEqual(findings({"s.py": source}, {"V": value}), [])


# ------------------------------------------------------------------------------ one-case URL-safe lines


def one_case(chunk: str) -> bool:
    return chunk == chunk.lower() or chunk == chunk.upper()


class TokenBase64CaseTest(unittest.TestCase):
    def test_a_tokens_own_url_safe_base64_holds_no_dash_or_underscore(self) -> None:
        rnd = random.Random(4)
        alphabet = string.ascii_letters + string.digits
        makers = {
            "github": lambda: "ghp_" + "".join(rnd.choice(alphabet) for _ in range(36)),
            "aws": lambda: "AKIA" + "".join(rnd.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
            "anthropic": lambda: "sk-ant-api03-" + "".join(rnd.choice(alphabet + "-_") for _ in range(93)),
            "gitlab": lambda: "glpat-" + "".join(rnd.choice(alphabet + "-_") for _ in range(20)),
        }
        for name, make in makers.items():
            with self.subTest(name):
                for _ in range(300):
                    token = make()
                    for lead in range(3):
                        head = "x" * lead
                        encoded = base64.urlsafe_b64encode((head + token).encode()).decode()
                        # The characters wholly made of the token's bits.
                        own = encoded[(len(head) * 4 + 2) // 3:(len(head) + len(token)) * 4 // 3]
                        self.assertNotIn("-", own)
                        self.assertNotIn("_", own)

    def test_one_case_lines_around_a_token_are_read(self) -> None:
        rnd = random.Random(3)
        detector = default_detector({})
        tried = 0
        for _ in range(6):
            token = "ghp_" + "".join(rnd.choice(string.ascii_letters + string.digits) for _ in range(36))
            for pad in range(3):
                for sep in ("", "\n", " "):
                    head = "~" * (60 + pad) + sep
                    encoded = base64.urlsafe_b64encode((head + token + sep).encode() + b"~" * 60).decode()
                    start, end = len(head) * 4 // 3, -(-(len(head) + len(token)) * 4 // 3)
                    for width in range(16, 33):
                        lines = chunks(encoded, width)
                        over_token = [c for n, c in enumerate(lines) if n * width < end and (n + 1) * width > start]
                        if not any(("-" in c or "_" in c) and one_case(c) for c in over_token):
                            continue
                        tried += 1
                        body = "".join(f'    "{c}"\n' for c in lines)
                        found = scan([Piece(COMMIT, "lines", f"X = (\n{body})\n", path="a.py", line=1)], detector)
                        self.assertIn("github-token (base64)", {f.detector for f in found}, (pad, sep, width))
        self.assertGreater(tried, 20)

    def test_a_one_case_last_line_after_lines_of_a_width(self) -> None:
        lines = ["Zm9vYmFyYmF6cXV4", "QUJDREVGR0hJSktM", "fn5-fn5-fn5-fn5"]
        text = "X = (\n" + "".join(f'    "{c}"\n' for c in lines) + ")\n"
        [run] = split.wrapped_runs(text)
        self.assertEqual(run.text, "".join(lines))


class OneCaseLookAlikesTest(unittest.TestCase):
    def test_names_next_to_a_chunk_of_another_width_pass(self) -> None:
        text = ('    "HTTPServerRequestHandler",\n'
                + "".join(f'    "first_argument_name_{n:02}",\n' for n in range(20))
                + '    "AnotherCamelCaseIdentifierName",\n'
                + "".join(f"    SOME_CONSTANT_NAME_{n:03},\n" for n in range(20)))
        self.assertEqual(split.wrapped_runs(text), [])
        self.assertEqual(findings({"names.py": text}), [])

    def test_uuids_and_kebab_names_after_a_hash_pass(self) -> None:
        rnd = random.Random(8)
        text = (f'    "{hashlib.sha256(b"x").hexdigest()}",\n'
                + "".join(f'    "{uuid.UUID(int=rnd.getrandbits(128))}",\n' for _ in range(30))
                + "".join(f"  - some-package-name-{n:04}\n" for n in range(30)))
        self.assertEqual(findings({"ids.yaml": text}), [])

    def test_names_of_one_width_with_a_mixed_case_one_are_read_but_pass(self) -> None:
        # Lines of one width with one that counts are read joined: nothing in them is a token.
        text = "".join(f'    "snake_case_name_{n:03}",\n' for n in range(10)) + '    "CamelCaseNameX0001",\n'
        self.assertEqual(findings({"mixed.py": text}), [])


# ------------------------------------------------------------------------------ YAML's dash


class YamlDashTest(unittest.TestCase):
    def setUp(self) -> None:
        self.encoded = base64.urlsafe_b64encode(bytes(range(256)) * 2).decode()
        self.assertFalse(any(one_case(c) for c in chunks(self.encoded, 40) if len(c) >= split.MIN_CHUNK))
        self.parts = chunks(self.encoded, 40)

    def test_pyyaml_reads_a_dash_without_a_blank_as_text(self) -> None:
        self.assertEqual(yaml.safe_load("k:\n  -abc\n  -def\n"), {"k": "-abc -def"})
        self.assertEqual(yaml.safe_load("k:\n  - abc\n  - def\n"), {"k": ["abc", "def"]})
        self.assertEqual(yaml.safe_load("k: [-abc, -def]\n"), {"k": ["-abc", "-def"]})
        with self.assertRaises(yaml.YAMLError):
            yaml.safe_load("k:\n  - abc\n  -def\n")

    def test_a_last_line_starting_with_a_dash_keeps_it(self) -> None:
        tail = "-" + self.parts[-1][:9]
        body = "".join(f"  - {c}\n" for c in self.parts[:-1]) + f"  {tail}\n"
        [run] = split.wrapped_runs(f"data:\n{body}")
        self.assertTrue(run.text.endswith(tail), run.text[-12:])

    def test_list_items_with_a_blank_are_read_without_the_dash(self) -> None:
        for blank in (" ", "\t", "  "):
            with self.subTest(blank=repr(blank)):
                body = "".join(f"  -{blank}{c}\n" for c in self.parts)
                [run] = split.wrapped_runs(f"data:\n{body}")
                self.assertEqual(run.text, self.encoded)

    def test_a_dash_without_a_blank_stays_in_the_chunk(self) -> None:
        body = "".join(f"  -{c}\n" for c in self.parts)
        for run in split.wrapped_runs(f"data:\n{body}"):
            self.assertNotEqual(run.text, self.encoded)
            self.assertTrue(run.text.startswith("-"))

    def test_a_dash_before_a_quote_is_no_list(self) -> None:
        body = "".join(f'  -"{c}"\n' for c in self.parts)
        self.assertEqual(split.wrapped_runs(f"data:\n{body}"), [])


if __name__ == "__main__":
    unittest.main()
