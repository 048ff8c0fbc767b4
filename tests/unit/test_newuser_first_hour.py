"""What a new user runs into in the first hour: typos get a "did you mean", a token pasted in the
wrong place is never printed back, a full or read-only home is a clear error (never a bug
report), and the prompts and flags of `start` behave on every input."""

from __future__ import annotations

import errno
import json
import sys
import tempfile
from pathlib import Path
from unittest import mock

from bot_bottle.errors import BotBottleError, UsageError
from bot_bottle.lifecycle import RunResult
from tests.fixtures import TEST_IMAGES, ManifestTestCase

TOKEN = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
ENOSPC = OSError(errno.ENOSPC, "No space left on device")


class DidYouMeanTests(ManifestTestCase):
    def test_a_mistyped_bottle_key_is_suggested(self) -> None:
        err = self.bottle_error("egres:\n  log: 1\n")
        self.assertManifestError(err, path=self.mh.bottles_dir / "b.md", line=2, key="egres",
                                 contains=("did you mean 'egress'?", "expected one of:"))

    def test_a_mistyped_agent_key_is_suggested(self) -> None:
        self.mh.bottle("dev", "")
        self.mh.agent("a", "bottle: dev\nskils: [pdf]\n")
        err = self.load_error()
        self.assertIn("did you mean 'skills'?", str(err))

    def test_nested_keys_and_values_are_suggested(self) -> None:
        cases = {
            "egress:\n  routes:\n    - hots: a.example\n": "did you mean 'host'?",
            "egress:\n  routes:\n    - host: a.example\n      matches: [{methods: [GTE]}]\n": "did you mean 'GET'?",
            "egress:\n  routes:\n    - host: a.example\n      dlp: {outbound_on_match: redcat}\n":
                "did you mean 'redact'?",
            "egress:\n  routes:\n    - host: a.example\n      auth: {scheme: baerer, token_ref: T}\n":
                "did you mean 'bearer'?",
            "agent_provider:\n  template: cluade\n": "did you mean 'claude'?",
            "git-gate:\n  usr: {name: x}\n": "did you mean 'user'?",
        }
        for text, wanted in cases.items():
            with self.subTest(wanted=wanted):
                self.assertIn(wanted, str(self.bottle_error(text)))

    def test_nothing_close_suggests_nothing(self) -> None:
        self.assertNotIn("did you mean", str(self.bottle_error("zebra: 1\n")))

    def test_a_mistyped_bottle_or_agent_name_is_suggested(self) -> None:
        self.mh.bottle("dev", "")
        self.mh.agent("coder", {"bottle": "dve"})
        self.assertIn("no bottle named 'dve'; did you mean 'dev'?", str(self.load_error("coder")))
        self.mh.agent("coder", {"bottle": "dev"})
        self.assertIn("no agent named 'codr'; did you mean 'coder'?", str(self.load_error("codr")))

    def test_the_cli_prints_the_suggestion(self) -> None:
        self.mh.bottle("dev", "egres: {log: 1}\n")
        self.mh.agent("coder", {"bottle": "dev"})
        result = self.mh.run_cli("validate")
        self.assertEqual(result.code, 2)
        self.assertIn("dev.md:2: egres: unknown key in a bottle file; did you mean 'egress'?", result.stderr)


class TokenInTheWrongPlaceTests(ManifestTestCase):
    """A token pasted where a key, an alias or a tag belongs is named, never printed."""

    def assert_hidden(self, text: str) -> None:
        self.mh.bottle("dev", text)
        self.mh.agent("coder", {"bottle": "dev"})
        for argv in (("validate",), ("validate", "--format", "json"), ("start", "coder", "--dry-run")):
            with self.subTest(argv=argv):
                result = self.mh.run_cli(*argv, images=TEST_IMAGES)
                self.assertEqual(result.code, 2, result.stderr)
                self.assertNotIn(TOKEN, result.stdout + result.stderr)
                self.assertNotIn("did you mean", result.stdout + result.stderr)
                self.assertIn("(not shown)", result.stdout + result.stderr)

    def test_as_a_top_level_key(self) -> None:
        self.assert_hidden(f"{TOKEN}: 1\n")

    def test_as_a_duplicated_env_name(self) -> None:
        self.assert_hidden(f"env:\n  {TOKEN}: a\n  {TOKEN}: b\n")

    def test_as_a_yaml_alias_or_tag(self) -> None:
        self.assert_hidden(f"env:\n  A: *{TOKEN}\n")
        self.assert_hidden(f"env:\n  A: !{TOKEN} x\n")

    def test_the_error_still_names_the_line(self) -> None:
        err = self.bottle_error(f"env:\n  TZ: UTC\n{TOKEN}: 1\n")
        self.assertEqual(err.line, 4)
        self.assertTrue(str(err).endswith("b.md:4: (not shown): unknown key in a bottle file; expected one of: "
                                          "extends, env, egress, git-gate, supervise, terminal, agent_provider, description"),
                        str(err))

    def test_validate_warns_of_a_token_written_as_a_literal(self) -> None:
        self.mh.bottle("dev", {"env": {"GH": TOKEN}})
        self.mh.agent("coder", {"bottle": "dev"})
        self.mh.agent("other", {"bottle": "dev"})
        result = self.mh.run_cli("validate")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertNotIn(TOKEN, result.stdout + result.stderr)
        warnings = [line for line in result.stderr_lines if "GitHub token" in line]
        self.assertEqual(len(warnings), 1, result.stderr)  # the bottle of two agents, named once
        self.assertIn("env GH (", warnings[0])
        data = json.loads(self.mh.run_cli("validate", "--format", "json").stdout)
        self.assertTrue(any("GitHub token" in w for w in data["warnings"]), data)


class YamlMistakeTests(ManifestTestCase):
    def test_an_unclosed_quote_names_the_line_it_opens_on(self) -> None:
        err = self.bottle_error('env:\n  A: "x\n  B: y\n')
        self.assertIn("in a quoted scalar that begins on line 3", str(err))

    def test_an_unclosed_bracket_names_the_line_it_opens_on(self) -> None:
        err = self.bottle_error("env:\n  A: [1, 2\n  B: y\n")
        self.assertIn("in a flow sequence that begins on line 3", str(err))

    def test_a_tab_gets_a_hint(self) -> None:
        err = self.bottle_error("env:\n\tA: 1\n")
        self.assertIn("tab", err.hint or "")


class UnwritableHomeTests(ManifestTestCase):
    def test_a_state_folder_that_cannot_be_made_is_a_clear_error(self) -> None:
        from bot_bottle.state import StateDir

        sdir = StateDir(self.mh.home / "state", "abcdef12")
        with mock.patch.object(Path, "mkdir", side_effect=OSError(errno.EROFS, "Read-only file system")):
            with self.assertRaises(BotBottleError) as cm:
                sdir.create()
        self.assertIn("cannot make the bottle's state folder", str(cm.exception))
        self.assertIn("Read-only file system", str(cm.exception))
        self.assertIn("read-only", cm.exception.hint or "")

    def test_a_file_where_the_state_folder_belongs_is_a_clear_error(self) -> None:
        from bot_bottle.state import StateDir

        (self.mh.home / "state").write_text("")
        with self.assertRaises(BotBottleError) as cm:
            StateDir(self.mh.home / "state", "abcdef12").create()
        self.assertIn("cannot make the bottle's state folder", str(cm.exception))
        self.assertIn(f"check that {self.mh.home / 'state'} is a folder", cm.exception.hint or "")

    def test_metadata_that_cannot_be_written_leaves_no_partial_file(self) -> None:
        from bot_bottle.state import Metadata, StateDir

        sdir = StateDir(self.mh.home / "state", "abcdef12")
        sdir.create()
        real_write = Path.write_text

        def half_written(path: Path, text: str, **kwargs: object) -> int:
            real_write(path, text[:3], encoding="utf-8")
            raise ENOSPC

        with mock.patch.object(Path, "write_text", half_written):
            with self.assertRaises(BotBottleError) as cm:
                sdir.write(Metadata(id="abcdef12", agent="a", bottle="b", backend="docker"))
        self.assertIn("No space left on device", str(cm.exception))
        self.assertIn("df -h", cm.exception.hint or "")
        self.assertEqual(list(sdir.path.iterdir()), [])

    def test_a_full_disk_anywhere_is_an_error_not_a_bug(self) -> None:
        self.mh.bottle("dev", "")
        self.mh.agent("coder", {"bottle": "dev"})
        failure = OSError(errno.ENOSPC, "No space left on device", str(self.mh.home / ".bot-bottle" / "x.db"))
        with mock.patch("bot_bottle.cli.validate.run", side_effect=failure):
            result = self.mh.run_cli("validate")
        self.assertEqual(result.code, 1)
        self.assertNotIn("internal error", result.stderr)
        self.assertIn(f"error: {self.mh.home / '.bot-bottle' / 'x.db'}: No space left on device", result.stderr)
        self.assertIn("df -h", result.stderr)

    def test_other_os_errors_are_still_reported_as_bugs(self) -> None:
        with mock.patch("bot_bottle.cli.validate.run", side_effect=OSError(errno.EBADF, "Bad file descriptor")):
            result = self.mh.run_cli("validate")
        self.assertEqual(result.code, 70)
        self.assertIn("internal error", result.stderr)

    def test_init_cut_short_leaves_nothing_behind(self) -> None:
        import os

        real_fdopen = os.fdopen
        calls = []

        def second_fails(fd: int, *args: object, **kwargs: object) -> object:
            calls.append(fd)
            if len(calls) == 2:
                os.close(fd)
                raise ENOSPC
            return real_fdopen(fd, *args, **kwargs)

        with mock.patch("bot_bottle.cli.init.os.fdopen", side_effect=second_fails):
            result = self.mh.run_cli("init")
        self.assertEqual(result.code, 1)
        self.assertIn("cannot write the example", result.stderr)
        self.assertIn("coder.md: No space left on device", result.stderr)
        self.assertEqual(sorted(p.name for p in self.mh.home_dir.rglob("*.md")), [])
        again = self.mh.run_cli("init")  # nothing half written stands in the way
        self.assertEqual(again.code, 0, again.stderr)
        self.assertEqual(self.mh.run_cli("validate").code, 0)

    def test_init_names_existing_files_with_their_folder(self) -> None:
        self.mh.bottle("dev", "")
        self.mh.agent("dev", {"bottle": "dev"})
        result = self.mh.run_cli("init")
        self.assertEqual(result.code, 1)
        self.assertIn("bottles/dev.md, agents/dev.md", result.stderr)

    def test_an_edit_that_cannot_be_saved_is_kept_elsewhere(self) -> None:
        path = self.mh.bottle("dev", "env:\n  TZ: UTC\n")
        self.mh.agent("coder", {"bottle": "dev"})
        script = "import pathlib,sys; p=pathlib.Path(sys.argv[1]); p.write_text(p.read_text().replace('UTC','GMT'))"
        editor = f"{sys.executable} -c \"{script}\""
        with tempfile.TemporaryDirectory() as tmp, mock.patch.object(tempfile, "tempdir", tmp), \
                mock.patch("bot_bottle.cli.edit._save", side_effect=ENOSPC):
            result = self.mh.run_cli("edit", "dev", env={"EDITOR": editor, "VISUAL": ""})
            kept = list(Path(tmp).glob("bot-bottle-edit-dev-*.md"))
            self.assertEqual(len(kept), 1, result.stderr)
            self.assertIn("TZ: GMT", kept[0].read_text())
            self.assertEqual(kept[0].stat().st_mode & 0o077, 0)
        self.assertEqual(result.code, 1)
        self.assertNotIn("internal error", result.stderr)
        self.assertIn("No space left on device", result.stderr)
        self.assertIn(f"your edit is kept at {kept[0]}", result.stderr)
        self.assertIn("TZ: UTC", path.read_text())


def _ran(exit_code: int = 0) -> RunResult:
    return RunResult(bottle_id="abcdef12", exit_code=exit_code, preserved=False, preserve_reason=None)


class StartInputTests(ManifestTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.mh.bottle("dev", "")
        self.mh.agent("coder", {"bottle": "dev"})

    def test_end_of_input_at_the_confirmation_is_a_no(self) -> None:
        terminal = mock.Mock()
        terminal.stdin.isatty.return_value = True
        with mock.patch("bot_bottle.cli.start.sys", terminal), \
                mock.patch("builtins.input", side_effect=EOFError), \
                mock.patch("bot_bottle.lifecycle.run_bottle") as launch:
            result = self.mh.run_cli("start", "coder", images=TEST_IMAGES,
                                     env={"ANTHROPIC_API_KEY": "x"})
        self.assertEqual(result.code, 1, result.stderr)
        self.assertIn("not started", result.stderr)
        self.assertNotIn("internal error", result.stderr)
        launch.assert_not_called()

    def test_headless_start_shows_the_plans_warnings(self) -> None:
        self.mh.bottle("dev", {"env": {"GH": TOKEN}})
        with mock.patch("bot_bottle.lifecycle.run_bottle", return_value=_ran()) as launch:
            result = self.mh.run_cli("start", "coder", "--headless", "--prompt", "hi", images=TEST_IMAGES,
                                     env={"ANTHROPIC_API_KEY": "x"})
        self.assertEqual(result.code, 0, result.stderr)
        launch.assert_called_once()
        self.assertIn("warning: env GH (", result.stderr)
        self.assertNotIn(TOKEN, result.stderr)

    def test_a_label_must_be_one_printable_line(self) -> None:
        for label in ("two\nlines", "\x1b[31mred", " ", "x" * 101):
            with self.subTest(label=label):
                result = self.mh.run_cli("start", "coder", "--dry-run", "--label", label, images=TEST_IMAGES)
                self.assertEqual(result.code, 2, result.stderr)
                self.assertIn("error: --label: a label", result.stderr)
        ok = self.mh.run_cli("start", "coder", "--dry-run", "--label", "fix tests é", images=TEST_IMAGES)
        self.assertEqual(ok.code, 0, ok.stderr)

    def test_the_api_refuses_a_bad_label_before_anything_runs(self) -> None:
        from bot_bottle import api

        with mock.patch("bot_bottle.lifecycle.run_bottle") as launch, self.assertRaises(UsageError) as cm:
            api.start("coder", prompt="hi", label="a\nb", home=self.mh.home)
        self.assertIn("one line", str(cm.exception))
        launch.assert_not_called()


class HelpTextTests(ManifestTestCase):
    def test_demo_help_names_what_the_demo_shows(self) -> None:
        text = self.mh.run_cli("demo", "--help").stdout
        for part in ("DLP", "git-gate", "supervise", "Claude Code", "throwaway HOME"):
            self.assertIn(part, text)

    def test_doctor_help_reads_as_a_sentence(self) -> None:
        text = self.mh.run_cli("doctor", "--help").stdout
        self.assertIn("Report what this host can run", text)


class ValidateReadinessTests(ManifestTestCase):
    def test_a_missing_ssh_key_is_a_warning_as_in_the_dry_run(self) -> None:
        self.mh.bottle("dev", 'git-gate:\n  repos:\n    app:\n      url: git@github.com:you/app.git\n'
                              '      ssh_key: ~/.ssh/no_such_key\n      known_hosts: "github.com ssh-ed25519 AAAA"\n')
        self.mh.agent("coder", {"bottle": "dev"})
        result = self.mh.run_cli("validate")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn("warning: coder: start would refuse: git-gate repo app", result.stderr)
        self.assertIn("~/.ssh/no_such_key is not a readable file", result.stderr)


class TopLevelHelpTests(ManifestTestCase):
    def test_a_mistyped_command_is_suggested(self) -> None:
        result = self.mh.run_cli("star", "coder")
        self.assertEqual(result.code, 2)
        self.assertIn("invalid choice: 'star'", result.stderr)
        self.assertIn("did you mean 'start'?", result.stderr)
        self.assertNotIn("did you mean", self.mh.run_cli("zzz").stderr)

    def test_the_help_shows_the_first_steps(self) -> None:
        text = self.mh.run_cli("--help").stdout
        self.assertIn("first steps:", text)
        self.assertIn("bot-bottle init", text)
        self.assertIn("bot-bottle start coder --dry-run", text)


class EditDraftNoticeTests(ManifestTestCase):
    def test_an_unchanged_edit_still_names_a_kept_draft(self) -> None:
        self.mh.bottle("dev", "env:\n  TZ: UTC\n")
        self.mh.agent("coder", {"bottle": "dev"})
        draft = self.mh.bottles_dir / ".dev.md.draft"
        draft.write_text("---\nenvv: {}\n---\n")
        draft.chmod(0o600)
        result = self.mh.run_cli("edit", "dev", env={"EDITOR": f"{sys.executable} -c pass", "VISUAL": ""})
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn("no changes to", result.stdout)
        self.assertIn(f"an earlier rejected draft is still kept at {draft}", result.stdout)
        self.assertTrue(draft.exists())
