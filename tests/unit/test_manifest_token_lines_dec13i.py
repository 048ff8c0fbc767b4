"""Where a manifest error places a token written inside text: at the token's own line (and column),
not at its key's, for every YAML block scalar shape, plain and quoted scalars over several lines,
CRLF files and a Markdown body; and what the refusal says about documentation example tokens,
which the egress proxy blocks as it blocks live ones.

Files are written byte for byte: line 1 is the opening ``---``.
"""

from __future__ import annotations

import json
from pathlib import Path

from bot_bottle.manifest import ManifestError
from bot_bottle.sidecar.dlp import Scanner
from tests.fixtures import ManifestTestCase

# Live-looking tokens of well-known formats (random bodies, no placeholder shape).
GITHUB = "ghp_R7bX2kQ9mLw4Tz8Vn1Pc6Hs3Jd5Fg0Ya2Ue7"
ANTHROPIC = "sk-ant-api03-h7Kp2Qw9Zr4Xm8Tn1Lv6Bc3Jd5Fs0Ga"

# Documentation examples: GitHub's docs, jwt.io's sample, AWS's documentation key pair.
DOC_GITHUB = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
DOC_JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0Ij"
           "oxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
DOC_AWS_ID = "AKIAIOSFODNN7EXAMPLE"
DOC_AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

DEPLOY = f"Deploy with {GITHUB} today."  # the token at column 13 of this text
INTRO = "This bottle is for the release tooling of the billing service, nothing else."


def _shown(err: BaseException) -> str:
    return str(err) + " " + (getattr(err, "hint", None) or "")


class Files(ManifestTestCase):
    def write_bottle(self, lines: list[str], body: str = "", newline: str = "\n") -> Path:
        """Bottle ``b`` whose frontmatter is ``lines`` (after ``env: {}`` on line 2), and agent ``a``."""
        path = self.mh.bottles_dir / "b.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = newline.join(["---", "env: {}", *lines, "---"]) + newline + body.replace("\n", newline)
        path.write_bytes(text.encode())
        self.mh.agent("a", {"bottle": "b"})
        return path

    def write_agent(self, lines: list[str], body: str, newline: str = "\n") -> Path:
        """Agent ``a`` whose frontmatter is ``lines`` (after ``bottle: b`` on line 2), bottle ``b``."""
        self.mh.bottle("b", "env: {}\n")
        path = self.mh.agents_dir() / "a.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((newline.join(["---", "bottle: b", *lines, "---"]) + newline + body.replace("\n", newline))
                         .encode())
        return path

    def assertPlaced(self, err: ManifestError, path: Path, line: int, column: int | None, key: str,
                     token: str) -> None:
        self.assertIsInstance(err, ManifestError)
        self.assertEqual((err.path, err.line, err.key), (path, line, key), str(err))
        self.assertTrue(str(err).startswith(f"{path}:{line}: {key}: "), str(err))
        if column is None:
            self.assertNotIn("column", str(err))
        else:
            self.assertIn(f" at column {column}", str(err))
        self.assertHidden(err, token)

    def assertHidden(self, err: ManifestError, token: str) -> None:
        """No six characters of the token in a row: the error names its format, never a part of it."""
        shown = _shown(err)
        for start in range(len(token) - 5):
            self.assertNotIn(token[start:start + 6], shown)


class DescriptionBlockTests(Files):
    """A token inside a bottle's ``description:`` block is placed on its own line."""

    def test_every_block_scalar_shape(self) -> None:
        # Line 3 is the key; the block's lines follow from line 4; the token is on line 5.
        for header in ("|", "|-", "|+", ">", ">-", ">+", "|2", "|2-", ">2", ">-2"):
            with self.subTest(header=header):
                path = self.write_bottle([f"description: {header}", f"  {INTRO}", f"  {DEPLOY}", "  The end."])
                self.assertPlaced(self.load_error(), path, 5, 15, "description", GITHUB)

    def test_an_indentation_indicator_with_a_more_indented_first_line(self) -> None:
        for header in ("|2", ">2-"):
            with self.subTest(header=header):
                path = self.write_bottle([f"description: {header}", f"      {INTRO}", "", f"  {DEPLOY}"])
                self.assertPlaced(self.load_error(), path, 6, 15, "description", GITHUB)

    def test_the_token_on_the_first_and_on_the_last_line_of_the_block(self) -> None:
        first = self.write_bottle(["description: >", f"  {GITHUB} deploys it.", f"  {INTRO}", f"  {INTRO}"])
        self.assertPlaced(self.load_error(), first, 4, 3, "description", GITHUB)
        last = self.write_bottle(["description: |", f"  {INTRO}", f"  {INTRO}", f"  The token is {GITHUB}"])
        self.assertPlaced(self.load_error(), last, 6, 16, "description", GITHUB)

    def test_blank_lines_inside_the_block(self) -> None:
        for header in ("|", ">"):
            with self.subTest(header=header):
                path = self.write_bottle([f"description: {header}", f"  {INTRO}", "", "", f"  {DEPLOY}", ""])
                self.assertPlaced(self.load_error(), path, 7, 15, "description", GITHUB)

    def test_a_crlf_file(self) -> None:
        for header in ("|", ">-", "|2"):
            with self.subTest(header=header):
                path = self.write_bottle([f"description: {header}", f"  {INTRO}", f"  {DEPLOY}"], newline="\r\n")
                self.assertPlaced(self.load_error(), path, 5, 15, "description", GITHUB)

    def test_a_block_that_is_the_token_itself(self) -> None:
        for header in ("|", ">-"):
            with self.subTest(header=header):
                path = self.write_bottle([f"description: {header}", "", f"    {ANTHROPIC}"])
                err = self.load_error()
                self.assertPlaced(err, path, 5, 5, "description", ANTHROPIC)
                self.assertIn("is a token itself (Anthropic API key)", str(err))

    def test_plain_and_quoted_scalars_over_several_lines(self) -> None:
        for first, last in (("", ""), ('"', '"'), ("'", "'")):
            with self.subTest(quote=first):
                path = self.write_bottle([f"description: {first}{INTRO}", f"  {DEPLOY}{last}"])
                self.assertPlaced(self.load_error(), path, 4, 15, "description", GITHUB)

    def test_a_token_on_the_keys_own_line_keeps_that_line_with_its_column(self) -> None:
        path = self.write_bottle([f"description: {INTRO} {DEPLOY}"])
        self.assertPlaced(self.load_error(), path, 3, 14 + len(INTRO) + 1 + 12, "description", GITHUB)

    def test_a_token_spelled_with_escapes_is_placed_at_the_key(self) -> None:
        # "\x67" is "g": the text holds no "ghp_...", so no line of it can be named; still refused.
        escaped = "\\x67" + GITHUB[1:]
        path = self.write_bottle([f'description: "{INTRO}', f'  Deploy with {escaped} today."'])
        self.assertPlaced(self.load_error(), path, 3, None, "description", GITHUB)

    def test_the_same_token_twice_is_placed_where_it_is_first_written(self) -> None:
        path = self.write_bottle(["description: |", f"  {INTRO}", f"  {DEPLOY}", f"  {DEPLOY}"])
        self.assertPlaced(self.load_error(), path, 5, 15, "description", GITHUB)

    def test_an_agents_description_block(self) -> None:
        path = self.write_agent(["description: >", f"  {INTRO}", f"  {DEPLOY}"], body="Be brief.\n")
        self.assertPlaced(self.load_error(), path, 5, 15, "description", GITHUB)

    def test_blocks_that_talk_about_tokens_pass(self) -> None:
        benign = ("A GitHub token looks like ghp_**** (ghp_ then 36 characters).",
                  f"AWS documents {DOC_AWS_ID} with the secret {DOC_AWS_SECRET}.",
                  "Keys look like sk-ant-api03-... or <token>; never paste one.",
                  "Commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it.")
        for header in ("|", ">-", "|2"):
            with self.subTest(header=header):
                self.write_bottle([f"description: {header}", f"  {INTRO}", *(f"  {line}" for line in benign)])
                bottle = self.load("a").bottle
                for line in benign:
                    self.assertIn(line, bottle.description)


class BodyTests(Files):
    """A token in a Markdown body: the agent's system prompt, a bottle's first paragraph."""

    def test_the_prompts_first_and_last_line(self) -> None:
        # Lines: 1 ---, 2 bottle, 3 ---, then the body from line 4.
        path = self.write_agent([], body=f"{GITHUB} is the token.\nBe brief.\n")
        self.assertPlaced(self.load_error(), path, 4, 1, "prompt", GITHUB)
        path = self.write_agent([], body=f"Be brief.\n\nThe token: {GITHUB}")  # no line end after it
        self.assertPlaced(self.load_error(), path, 6, 12, "prompt", GITHUB)

    def test_a_crlf_prompt(self) -> None:
        path = self.write_agent(["description: x"], body=f"One.\n\n  {DEPLOY}\n", newline="\r\n")
        self.assertPlaced(self.load_error(), path, 7, 15, "prompt", GITHUB)

    def test_a_bottles_first_paragraph_after_blank_lines(self) -> None:
        path = self.write_bottle([], body=f"\n\n{INTRO}\n{DEPLOY}\n\nMore.\n")
        self.assertPlaced(self.load_error(), path, 7, 13, "description", GITHUB)

    def test_a_bottles_first_paragraph_that_is_the_token_itself(self) -> None:
        path = self.write_bottle([], body=f"\n  {ANTHROPIC}\n\nMore.\n")
        err = self.load_error()
        self.assertEqual((err.line, err.key), (5, "description"), str(err))
        self.assertIn("is a token itself", str(err))
        self.assertHidden(err, ANTHROPIC)

    def test_a_line_separator_in_the_frontmatter_does_not_shift_the_bodys_lines(self) -> None:
        # U+2028 inside a quoted value ends no line for an editor or grep; the body starts on line 4.
        path = self.write_agent(['description: "one\u2028two"'], body=f"Be brief.\n{DEPLOY}\n")
        self.assertPlaced(self.load_error(), path, 6, 13, "prompt", GITHUB)


class DocumentationExampleTests(Files):
    """Documentation examples the proxy blocks are refused, and the refusal says so and how to
    write the prompt instead; the ones it lets through (AWS's EXAMPLE keys) pass."""

    def test_a_documentation_token_in_the_prompt(self) -> None:
        for token, name in ((DOC_GITHUB, "GitHub token"), (DOC_JWT, "JSON Web Token")):
            with self.subTest(name=name):
                path = self.write_agent([], body=f"Tokens look like this one from the docs:\n{token}\n")
                err = self.load_error()
                self.assertPlaced(err, path, 5, 1, "prompt", token)
                self.assertIn(name, str(err))
                self.assertIn("egress proxy blocks every request to the model", str(err))
                self.assertIn("even if it is a documentation example", str(err))
                self.assertIn("describe the token", err.hint)
                self.assertIn("<token>", err.hint)

    def test_a_documentation_token_in_a_description(self) -> None:
        path = self.write_bottle(["description: |", f"  {INTRO}", f"  e.g. {DOC_GITHUB}"])
        err = self.load_error()
        self.assertPlaced(err, path, 5, 8, "description", DOC_GITHUB)
        self.assertIn("even if it is a documentation example", str(err))
        self.assertIn("<token>", err.hint)

    def test_the_written_forms_the_hint_offers_pass(self) -> None:
        body = ("A GitHub token is ghp_ then 36 letters and digits; write <token> or ghp_... in examples.\n"
                f"AWS documents {DOC_AWS_ID} and {DOC_AWS_SECRET}.\n")
        self.write_agent([], body=body)
        self.assertEqual(self.load("a").agent.prompt, body.strip("\n"))

    def test_the_manifest_refuses_a_prompt_the_proxy_blocks_and_no_other(self) -> None:
        scanner = Scanner()
        prompts = {
            "github docs": f"Use {DOC_GITHUB} as in the docs.",
            "jwt.io": f"A JWT: {DOC_JWT}",
            "aws id": f"aws_access_key_id = {DOC_AWS_ID}",
            "aws pair": f"aws_access_key_id = {DOC_AWS_ID}\naws_secret_access_key = {DOC_AWS_SECRET}",
            "aws words": f"{DOC_AWS_ID} {DOC_AWS_SECRET}",
            "elided": "ghp_**** or ghp_... or sk-ant-api03-... or <token>",
            "live": f"Push with {GITHUB}.",
        }
        for label, prompt in prompts.items():
            with self.subTest(label=label):
                self.write_agent([], body=prompt + "\n")
                try:
                    self.load("a")
                    refused = False
                except ManifestError:
                    refused = True
                body = json.dumps({"model": "m", "system": prompt, "messages": [{"role": "user", "content": "hi"}]})
                findings = scanner.scan_request("POST", "https://api.anthropic.com/v1/messages",
                                                [("content-type", "application/json")], body.encode())
                self.assertEqual(refused, bool(findings), [f.detector for f in findings])
