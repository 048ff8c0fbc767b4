"""Gaps left by the last audit of manifests: a token in an agent's system prompt, a token inside a
long description, CRLF / CR / BOM files handed to the parser as text, and the cost of reading an
invalid large frontmatter (its error worded as the pure-Python parser words it).

Manifests are literal strings: line 1 is the opening ``---``, so the first YAML line is line 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import yaml

from bot_bottle.manifest import ManifestError, frontmatter, load, validate
from tests.fixtures import ManifestTestCase

# Live-looking tokens of well-known formats (random bodies, no placeholder shape).
GITHUB = "ghp_R7bX2kQ9mLw4Tz8Vn1Pc6Hs3Jd5Fg0Ya2Ue7"
ANTHROPIC = "sk-ant-api03-h7Kp2Qw9Zr4Xm8Tn1Lv6Bc3Jd5Fs0Ga"
AWS_ID = "AKIA4Q7ZK2XW9RMB3NTP"
SLACK = "xoxb-2934857162-9485716203-Zk8Qw2Rm7Xp4Tn9Lv6Bc3Jd"

LONG_TEXT = ("This bottle is for the release tooling of the billing service: it reaches the package "
             "registry, the issue tracker and the CI, and nothing else. Ask before widening it. ")

# What a prompt or a description says *about* credentials: none of these is one.
BENIGN = (
    "Never print ghp_ tokens or sk-ant- keys; they live in the host.",
    "A GitHub token looks like ghp_**** (ghp_ then 36 characters).",
    "An Anthropic key starts with sk-ant-... and must never be echoed.",
    "AWS documents AKIAIOSFODNN7EXAMPLE with the secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.",
    "Use the token in $GITHUB_TOKEN (export GITHUB_TOKEN=${GITHUB_TOKEN}); never paste it.",
    "The password is read from the keychain; a line such as password: hunter2 is a test fixture.",
    "Commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it; request 123e4567-e89b-12d3-a456-426614174000.",
    "ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa is what a redacted token looks like in our logs.",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEow...fvY4+te\n-----END RSA PRIVATE KEY----- is a key shown elided.",
    "A JWT starts with eyJ and has three parts separated by dots.",
    "Keys look like sk-ant-api03-**** or ghp_<36 characters>; AWS ids like AKIA followed by 16 characters.",
    "Set ANTHROPIC_API_KEY in the host; the proxy adds it to requests to api.anthropic.com.",
    "The webhook is https://hooks.slack.com/services/T000/B000/... (elided).",
)

# A private key block, and a JWT with a signature: formats the proxy blocks too.
OPENSSH_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
               "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
               "QyNTUxOQAAACDx7Yq3k9Lm2Pz8Rt4Wv6Ns1Bc5Hd0Jf2Ga7Ue3Xk9QmAAAAJgQ2hZ9ENoW\n"
               "-----END OPENSSH PRIVATE KEY-----")
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJib3QiLCJpYXQiOjE3MzM1NjAwMDB9."
       "q8Zt3Lw9Xr2Vn6Kp4Hs7Jd1Fg5Bc0Ma8Ue2Yk")


def _text(error: BaseException) -> str:
    return str(error) + " " + (getattr(error, "hint", None) or "")


class PromptTokenTests(ManifestTestCase):
    """An agent's body is its system prompt, shown by ``info`` and in the plan: never a token."""

    def agent_with_prompt(self, body: str, frontmatter: str = "bottle: dev\n") -> Path:
        self.mh.bottle("dev", "env: {}\n")
        return self.mh.agent("a", frontmatter, body=body)

    def test_a_token_on_its_own_line_is_refused_at_its_line(self) -> None:
        # Lines: 1 ---, 2 bottle, 3 ---, 4 "You are...", 5 blank, 6 the token.
        path = self.agent_with_prompt(f"You are a careful agent.\n\n{GITHUB}\n\nBe brief.\n")
        err = self.load_error("a")
        self.assertIsInstance(err, ManifestError)
        self.assertEqual((err.path, err.line, err.key), (path, 6, "prompt"), str(err))
        self.assertIn("GitHub token", str(err))
        self.assertNotIn(GITHUB, _text(err))
        self.assertEqual(err.exit_code, 2)

    def test_a_token_as_a_word_inside_a_sentence_is_refused(self) -> None:
        for token in (GITHUB, ANTHROPIC, AWS_ID, SLACK):
            with self.subTest(token=token[:8]):
                path = self.agent_with_prompt(f"Intro line.\nPush with {token} when asked.\n")
                err = self.load_error("a")
                self.assertEqual((err.path, err.line, err.key), (path, 5, "prompt"), str(err))
                self.assertNotIn(token, _text(err))

    def test_a_private_key_block_or_a_jwt_is_refused_at_its_first_line(self) -> None:
        for secret, name in ((OPENSSH_KEY, "Private key block"), (JWT, "JSON Web Token")):
            with self.subTest(name=name):
                path = self.agent_with_prompt(f"Intro line.\nUse this:\n{secret}\nThanks.\n")
                err = self.load_error("a")
                self.assertEqual((err.path, err.line, err.key), (path, 6, "prompt"), str(err))
                self.assertIn(name, str(err))
                for part in secret.splitlines()[1:]:
                    self.assertNotIn(part, _text(err))

    def test_crlf_prompt_names_the_right_line(self) -> None:
        self.mh.bottle("dev", "env: {}\n")
        path = self.mh.agents_dir() / "a.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"---\r\nbottle: dev\r\n---\r\nOne.\r\nTwo.\r\n{GITHUB}\r\n".encode())
        err = self.load_error("a")
        self.assertEqual((err.line, err.key), (6, "prompt"))

    def test_no_command_shows_it(self) -> None:
        self.agent_with_prompt(f"Be careful.\n{GITHUB}\n")
        for argv in (("validate",), ("validate", "--format", "json"), ("info", "a"), ("info", "a", "--format", "json"),
                     ("list",), ("list", "--format", "json"), ("start", "a", "--dry-run")):
            with self.subTest(argv=argv):
                result = self.mh.run_cli(*argv)
                self.assertNotIn(GITHUB, result.stdout + result.stderr)
                self.assertNotIn("Traceback", result.stderr)
        for argv in (("validate",), ("info", "a")):
            result = self.mh.run_cli(*argv)
            self.assertEqual(result.code, 2, result.stdout + result.stderr)
            self.assertIn("a.md:5: prompt:", result.stdout + result.stderr)

    def test_prompts_that_talk_about_tokens_pass(self) -> None:
        for text in BENIGN:
            with self.subTest(text=text[:40]):
                self.agent_with_prompt(f"You are a careful agent.\n\n{text}\n")
                manifest = self.load("a")
                self.assertIn(text, manifest.agent.prompt)

    def test_an_empty_or_short_prompt_passes(self) -> None:
        for body in ("", "\n", "Be brief.\n"):
            with self.subTest(body=body):
                self.agent_with_prompt(body)
                self.assertEqual(self.load("a").agent.prompt, body.strip("\n"))

    def test_every_mistake_of_the_file_is_reported_with_it(self) -> None:
        self.mh.bottle("dev", "env: {}\n")
        self.mh.agent("a", "bottle: dev\nskills: [bad/name]\n", body=f"{GITHUB}\n")
        err = self.load_error("a")
        self.assertEqual(len(err.each()), 2, [str(e) for e in err.each()])


class DescriptionTokenAnywhereTests(ManifestTestCase):
    """A live-looking token inside a long description is shown with it: refused, never quoted."""

    def test_a_token_in_a_long_description_key_is_refused(self) -> None:
        description = f"{LONG_TEXT}Its deploy token is {GITHUB} for now."
        self.assertLess(len(GITHUB), len(description) // 2)
        err = self.bottle_error(f"env: {{}}\ndescription: {json.dumps(description)}\n")
        self.assertEqual((err.line, err.key), (3, "description"), str(err))
        self.assertIn("GitHub token", str(err))
        self.assertNotIn(GITHUB, _text(err))

    def test_a_token_in_a_long_first_paragraph_is_refused_at_its_line(self) -> None:
        # Lines: 1 ---, 2 env, 3 ---, 4 blank, 5 and 6 the paragraph (the token on line 6).
        body = f"\n{LONG_TEXT}\nThe key {ANTHROPIC} is set for the tests.\n\nMore text.\n"
        err = self.bottle_error("env: {}\n", body=body)
        self.assertEqual((err.line, err.key), (6, "description"), str(err))
        self.assertNotIn(ANTHROPIC, _text(err))

    def test_an_agents_long_description_is_refused_too(self) -> None:
        self.mh.bottle("dev", "env: {}\n")
        self.mh.agent("a", f"bottle: dev\ndescription: {json.dumps(LONG_TEXT + AWS_ID)}\n", body="Be brief.\n")
        err = self.load_error("a")
        self.assertEqual((err.line, err.key), (3, "description"), str(err))
        self.assertNotIn(AWS_ID, _text(err))

    def test_validate_and_info_never_show_it(self) -> None:
        self.mh.bottle("dev", "env: {}\n", body=f"{LONG_TEXT}\n{SLACK} is the bot.\n")
        self.mh.agent("a", "bottle: dev\n", body="Be brief.\n")
        for argv in (("validate",), ("validate", "--format", "json"), ("info", "a"), ("list",)):
            with self.subTest(argv=argv):
                result = self.mh.run_cli(*argv)
                self.assertNotIn(SLACK, result.stdout + result.stderr)
        self.assertEqual(self.mh.run_cli("validate").code, 2)

    def test_descriptions_that_talk_about_tokens_pass(self) -> None:
        for text in BENIGN:
            with self.subTest(text=text[:40]):
                description = f"{LONG_TEXT}{text}"
                bottle = self.load_bottle(f"env: {{}}\ndescription: {json.dumps(description)}\n")
                self.assertEqual(bottle.description, description)
                from_body = self.load_bottle("env: {}\n", body=f"{LONG_TEXT}\n{text}\n\nMore.\n")
                self.assertIn(text.split("\n")[0], from_body.description)

    def test_a_token_past_the_first_paragraph_of_a_bottle_is_not_its_description(self) -> None:
        # Only the first paragraph is kept and shown; the rest of a bottle's body is never read.
        bottle = self.load_bottle("env: {}\n", body=f"What this is for.\n\nNotes: {GITHUB}\n")
        self.assertEqual(bottle.description, "What this is for.")


CRLF_BOTTLE = "---\r\nenv: {}\r\n---\r\nFirst paragraph,\r\nstill the first.\r\n\r\nSecond paragraph.\r\n"


class LineEndTests(ManifestTestCase):
    """Text handed to the parser as it is (``edit``'s and ``supervise``'s overrides, the API):
    every line-end shape and a byte order mark read as the same file with '\\n' line ends."""

    SHAPES = {
        "lf": "---\nenv: {}\n---\nFirst paragraph,\nstill the first.\n\nSecond paragraph.\n",
        "crlf": CRLF_BOTTLE,
        "cr": CRLF_BOTTLE.replace("\r\n", "\r"),
        "bom-lf": "\ufeff---\nenv: {}\n---\nFirst paragraph,\nstill the first.\n\nSecond paragraph.\n",
        "bom-crlf": "\ufeff" + CRLF_BOTTLE,
        "bom-cr": "\ufeff" + CRLF_BOTTLE.replace("\r\n", "\r"),
        "mixed": "---\r\nenv: {}\n---\rFirst paragraph,\r\nstill the first.\n\r\nSecond paragraph.\r",
        "crlf-closing-with-spaces": ("---  \r\nenv: {}\r\n---  \r\nFirst paragraph,\r\nstill the first.\r\n\r\n"
                                     "Second.\r\n"),
    }

    def bottle_from_text(self, text: str) -> Any:
        self.mh.bottle("b", "env: {}\n")
        self.mh.agent("a", "bottle: b\n", body="Be brief.\n")
        return load("a", self.mh.layout, overrides={self.mh.bottles_dir / "b.md": text}).bottle

    def test_each_shape_keeps_the_first_paragraph_only(self) -> None:
        for shape, text in self.SHAPES.items():
            with self.subTest(shape=shape):
                self.assertEqual(self.bottle_from_text(text).description, "First paragraph,\nstill the first.")

    def test_each_shape_parses_to_the_same_document(self) -> None:
        expected = frontmatter.parse(self.SHAPES["lf"], Path("/m/b.md"))
        for shape, text in self.SHAPES.items():
            if shape.startswith("crlf-closing"):
                continue
            with self.subTest(shape=shape):
                doc = frontmatter.parse(text, Path("/m/b.md"))
                self.assertEqual((doc.data, doc.body, doc.lines, doc.body_line),
                                 (expected.data, expected.body, expected.lines, expected.body_line))
                self.assertNotIn("\r", doc.body)

    def test_an_agent_prompt_carries_no_carriage_return(self) -> None:
        self.mh.bottle("dev", "env: {}\n")
        path = self.mh.agents_dir() / "a.md"
        self.mh.agent("a", "bottle: dev\n", body="x\n")
        for text in ("---\r\nbottle: dev\r\n---\r\nOne.\r\nTwo.\r\n", "---\rbottle: dev\r---\rOne.\rTwo.\r"):
            with self.subTest(text=text):
                manifest = load("a", self.mh.layout, overrides={path: text})
                self.assertEqual(manifest.agent.prompt, "One.\nTwo.")

    def test_errors_in_a_crlf_or_cr_frontmatter_name_the_right_line(self) -> None:
        for newline in ("\r\n", "\r"):
            with self.subTest(newline=repr(newline)):
                text = newline.join(("---", "env: {}", "egress:", "  log: nine", "---", "body")) + newline
                with self.assertRaises(ManifestError) as caught:
                    self.bottle_from_text(text)
                self.assertEqual((caught.exception.line, caught.exception.key), (4, "egress.log"))

    def test_a_byte_order_mark_inside_the_file_is_not_taken_away(self) -> None:
        # Only a leading mark is the file's encoding signature; one later is the text's own.
        doc = frontmatter.parse("---\nenv: {}\n---\nBody \ufeff here.\r\n", Path("/m/b.md"))
        self.assertEqual(doc.body, "Body \ufeff here.\n")

    def test_a_crlf_file_on_disk_reads_as_before(self) -> None:
        path = self.mh.bottles_dir / "b.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(CRLF_BOTTLE.encode())
        self.mh.agent("a", "bottle: b\n", body="Be brief.\n")
        self.assertEqual(self.load("a").bottle.description, "First paragraph,\nstill the first.")


def _invalid_large(error_at: float) -> str:
    """~250 KB of dense routes with one YAML mistake at ``error_at`` (0..1) of the way through."""
    routes = [f"    - host: h{i}.example.com\n      ports: [443, 8443]\n" for i in range(4000)]
    at = int(len(routes) * error_at)
    routes[at] = "    - host: [broken\n      ports: 443\n"
    return "---\negress:\n  routes:\n" + "".join(routes) + "---\n"


def _parse_outcome(text: str) -> tuple[str, int | None, str | None, str | None]:
    try:
        frontmatter.parse(text, Path("/m/b.md"))
    except ManifestError as exc:
        return str(exc), exc.line, exc.key, exc.hint
    raise AssertionError("no error")


def _pure_outcome(text: str) -> tuple[str, int | None, str | None, str | None]:
    with mock.patch.object(frontmatter, "C_LOADER", None):
        return _parse_outcome(text)


class InvalidLargeFrontmatterTests(ManifestTestCase):
    """An error found by libyaml in a large text is worded by the pure-Python parser, exactly."""

    def test_the_error_is_worded_as_the_pure_python_parser_words_it(self) -> None:
        for error_at in (0.0, 0.1, 0.5, 0.99):
            with self.subTest(error_at=error_at):
                text = _invalid_large(error_at)
                self.assertEqual(_parse_outcome(text), _pure_outcome(text))

    def test_errors_whose_reading_depends_on_the_rest_of_the_text(self) -> None:
        filler = "".join(f"k{i}: v{i}\n" for i in range(3000))
        for head, tail in (("a: 'unclosed\n", filler), ("a: [1, 2\n", filler), ("a: b: c\n", filler),
                           ("a: 1\n", filler + "b: @x\n"), ("a: &x 1\nb: &x 2\n", filler + "c: *x\n"),
                           ("a: *nowhere\n", filler), ("a: \"\\q\"\n", filler), ("a: " + "[" * 40 + "\n", filler),
                           ("a:\n  - 1\n b: 2\n", filler), ("a: 1\n", filler + "\x07\n"),
                           ("a: 1\n", filler + "a: 2\n"), ("x: |\n  one\n two: 2\n", filler),
                           ("a: \"\\U00110000\"\n", filler), ("a: 1\n", filler + "- x\n")):
            with self.subTest(head=head[:20], tail=tail[-10:]):
                text = f"---\n{head}{tail}---\n"
                self.assertEqual(_parse_outcome(text), _pure_outcome(text))


# Entries of a long egress.routes in the shapes a manifest writes them (and some it rarely does).
_ENTRY_SHAPES = (
    "    - host: h{i}.example.com\n      ports: [443, 8443]\n",
    "    - host: h{i}.example.com\n      matches:\n        - paths: ['/a/{i}', \"/b\"]\n          methods: [GET]\n",
    "    # a comment {i}\n    - h{i}.example.com\n",
    "    - {{host: h{i}.example.com, ports: [1, 2]}}\n",
    "    - host: \"multi\n        line {i}\"\n",
    "    -\n      host: h{i}.example.com\n",
    "    - - nested{i}\n      - more{i}\n",
    "\n    - plain value\n      continued {i}\n",
)
_MISTAKES = ("a: b: c", "[broken", "'unclosed", "\"\\q\"", "*nowhere", "@x", "{a: 1", "]", "- - : -", "&a 1",
             ": x", "\x07", "x\n  y: z", "k: v\n k2: v2", "- x\n y", "---", "...", "%YAML 1.1")


class ErrorsAfterManyEntriesTests(ManifestTestCase):
    """Mistakes at many places of long texts: worded exactly as the pure-Python parser words them."""

    def test_seeded_texts_read_as_the_pure_python_parser_reads_them(self) -> None:
        import random

        rnd = random.Random(12)
        for trial in range(40):
            routes = "".join(rnd.choice(_ENTRY_SHAPES).format(i=i) for i in range(rnd.randint(40, 160)))
            env = "".join(f"  V{i}: v{i}\n" for i in range(rnd.randint(0, 60)))
            lines = f"egress:\n  log: 1\n  routes:\n{routes}env:\n{env}".splitlines(keepends=True)
            at = rnd.randint(3, len(lines) - 1)
            mistake = " " * rnd.choice((0, 2, 4, 6, 8)) + rnd.choice(_MISTAKES)
            how = rnd.choice(("insert", "replace", "append"))
            if how == "insert":
                lines.insert(at, mistake + "\n")
            elif how == "replace":
                lines[at] = mistake + "\n"
            else:
                lines[at] = lines[at].rstrip("\n") + " " + mistake.strip() + "\n"
            text = "---\n" + "".join(lines) + "---\n"
            with self.subTest(trial=trial, how=how, at=at, mistake=mistake):
                self.assertEqual(_outcome(text), _outcome(text, pure=True))


def _outcome(text: str, *, pure: bool = False) -> Any:
    if pure:
        with mock.patch.object(frontmatter, "C_LOADER", None):
            return _outcome(text)
    try:
        doc = frontmatter.parse(text, Path("/m/b.md"))
    except ManifestError as exc:
        return str(exc), exc.line, exc.key, exc.hint
    return doc.data, doc.lines


class ValidateCostTests(ManifestTestCase):
    def test_validate_reports_the_large_files_error_once(self) -> None:
        self.mh.write(self.mh.bottles_dir / "big.md", _invalid_large(0.3))
        report = validate(self.mh.layout)
        self.assertEqual(len(report.errors), 1, [str(e) for e in report.errors])
        self.assertIn("invalid YAML", str(report.errors[0]))
