"""``bot-bottle logs ID``: live log of a running sidecar, saved log of a preserved bottle, or a clear error.

Docker is replaced by stand-ins for ``engine.run`` and the follow subprocess; no engine is used.
"""

from __future__ import annotations

import io
import json
import subprocess
import unittest
from unittest import mock

from bot_bottle.backend.docker import engine
from bot_bottle.cli import logs
from tests.fixtures import ManifestHome

ALLOW = {"ts": "2026-01-02T03:04:05.678Z", "event": "egress", "decision": "allow", "rule": "route",
         "route": "routes[0] (a.example)", "host": "a.example", "port": 443, "method": "GET", "path": "/x",
         "connect": False, "status": 200, "duration_ms": 3.25, "request_bytes": 0, "response_bytes": 5}
DENY = {"ts": "2026-01-02T03:04:06.000Z", "event": "egress", "decision": "deny", "rule": "default-deny",
        "route": None, "host": "evil.example", "port": 80, "method": "POST", "path": "/steal", "connect": False,
        "reason": "no route allows host evil.example", "status": 403}
REDACT = {**ALLOW, "dlp_action": "redact", "detectors": ["github-token"]}
LOG = "\n".join(json.dumps(r) for r in (ALLOW, DENY)) + "\nnot json\n{\"torn"


class FakeEngine:
    """Answers ``docker inspect`` and ``docker exec cat`` like an engine with one bottle (or none)."""

    def __init__(self, running: bool, log: str = LOG, cat_error: str = "") -> None:
        self.running = running
        self.log = log
        self.cat_error = cat_error
        self.calls: list[list[str]] = []

    def __call__(self, args, **kw):
        self.calls.append(list(args))
        if args[0] == "inspect":
            if self.running:
                return engine.DockerResult(0, "true\n", "")
            return engine.DockerResult(1, "", "Error: No such object")
        if args[0] == "exec" and any(a.startswith("cat ") or a == "cat" for a in args):
            if self.cat_error:
                return engine.DockerResult(1, "", self.cat_error)
            return engine.DockerResult(0, self.log, "")
        raise AssertionError(f"unexpected docker call {args}")


class LogsCommandTest(unittest.TestCase):
    def setUp(self) -> None:
        self.mh = ManifestHome.for_test(self)

    def run_logs(self, *argv: str, fake: FakeEngine):
        with mock.patch.object(engine, "run", fake):
            return self.mh.run_cli("logs", *argv)

    def test_running_bottle_json(self) -> None:
        fake = FakeEngine(running=True)
        result = self.run_logs("abcd1234", "--format", "json", fake=fake)
        self.assertEqual(result.code, 0, result.stderr)
        records = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual(records, [ALLOW, DENY])  # the malformed and torn lines are skipped
        self.assertIn(["inspect", "-f", "{{.State.Running}}", "bot-bottle-abcd1234-sidecar"], fake.calls)
        (read,) = [c for c in fake.calls if c[0] == "exec"]
        self.assertEqual(read[:4], ["exec", "bot-bottle-abcd1234-sidecar", "sh", "-c"])
        self.assertEqual(read[4], f"cat {logs.SIDECAR_LOG}.first {logs.SIDECAR_LOG}.1 2>/dev/null; cat {logs.SIDECAR_LOG}",
                         "the first and the earlier parts of the log first, then the current one")

    def test_running_bottle_text(self) -> None:
        result = self.run_logs("abcd1234", fake=FakeEngine(running=True))
        self.assertEqual(result.code, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual(len(lines), 2)
        self.assertIn("ALLOW", lines[0])
        self.assertIn("a.example:443/x", lines[0])
        self.assertIn("3.2ms", lines[0])
        self.assertIn("DENY", lines[1])
        self.assertIn("rule default-deny", lines[1])
        self.assertIn("no route allows host evil.example", lines[1])

    def test_running_bottle_with_no_log_file_yet(self) -> None:
        fake = FakeEngine(running=True, cat_error="cat: /var/log/bottle/egress.jsonl: No such file or directory")
        result = self.run_logs("abcd1234", fake=fake)
        self.assertEqual(result.code, 0)
        self.assertIn("no egress decisions logged yet", result.stderr)

    def test_unreadable_log_is_an_error(self) -> None:
        result = self.run_logs("abcd1234", fake=FakeEngine(running=True, cat_error="permission denied"))
        self.assertEqual(result.code, 1)
        self.assertIn("cannot read the egress log", result.stderr)

    def test_stopped_bottle_falls_back_to_the_saved_log(self) -> None:
        saved = self.mh.home / ".bot-bottle" / "state" / "abcd1234" / "egress.jsonl"
        saved.parent.mkdir(parents=True)
        saved.write_text(json.dumps(DENY) + "\n")
        fake = FakeEngine(running=False)
        result = self.run_logs("abcd1234", "--format", "json", fake=fake)
        self.assertEqual(result.code, 0, result.stderr)
        self.assertEqual([json.loads(x) for x in result.stdout.splitlines()], [DENY])
        self.assertFalse(any(call[0] == "exec" for call in fake.calls))

    def test_a_gap_a_flood_left_in_the_saved_log_is_shown(self) -> None:
        from bot_bottle.sidecar.egress.logfile import FIRST, EARLIER, LogFile

        folder = self.mh.home / ".bot-bottle" / "state" / "abcd1234"
        folder.mkdir(parents=True)
        log = LogFile(folder / "live.jsonl", limit=600)
        for i in range(60):
            log.write(json.dumps({**DENY, "path": f"/flood/{i}"}) + "\n")
        log.close()
        parts = [folder / ("live.jsonl" + suffix) for suffix in (FIRST, EARLIER, "")]
        (folder / "egress.jsonl").write_text("".join(p.read_text() for p in parts))  # as copy_out saves it
        text = self.run_logs("abcd1234", fake=FakeEngine(running=False))
        self.assertEqual(text.code, 0, text.stderr)
        self.assertEqual(text.stdout.count("of decisions dropped here"), 1, text.stdout)
        self.assertIn("/flood/0", text.stdout, "the first decisions are kept")
        self.assertIn("/flood/59", text.stdout)
        shown = self.run_logs("abcd1234", "--format", "json", fake=FakeEngine(running=False))
        self.assertNotIn("dropped here", shown.stdout, "JSON lines stay records only")
        self.assertEqual(json.loads(shown.stdout.splitlines()[0])["path"], "/flood/0")

    def test_follow_on_a_stopped_bottle_shows_the_saved_log(self) -> None:
        saved = self.mh.home / ".bot-bottle" / "state" / "abcd1234" / "egress.jsonl"
        saved.parent.mkdir(parents=True)
        saved.write_text(json.dumps(DENY) + "\n")
        result = self.run_logs("abcd1234", "--follow", fake=FakeEngine(running=False))
        self.assertEqual(result.code, 0)
        self.assertIn("not running", result.stderr)
        self.assertIn("DENY", result.stdout)

    def test_neither_running_nor_saved(self) -> None:
        result = self.run_logs("abcd1234", fake=FakeEngine(running=False))
        self.assertEqual(result.code, 1)
        self.assertIn("bottle abcd1234 is not running and has no saved egress log", result.stderr)
        self.assertIn("hint:", result.stderr)

    def test_no_docker_at_all_uses_the_saved_log(self) -> None:
        def no_docker(args, **kw):
            raise engine.DockerError("the docker CLI is not installed")

        saved = self.mh.home / ".bot-bottle" / "state" / "abcd1234" / "egress.jsonl"
        saved.parent.mkdir(parents=True)
        saved.write_text(json.dumps(ALLOW) + "\n")
        with mock.patch.object(engine, "run", no_docker):
            result = self.mh.run_cli("logs", "abcd1234", "--format", "json")
        self.assertEqual(result.code, 0, result.stderr)

    def test_no_engine_and_no_saved_log_says_the_engine_is_the_cause(self) -> None:
        def down(args, **kw):
            return engine.DockerResult(1, "", "Cannot connect to the Docker daemon at unix:///x.sock. "
                                              "Is the docker daemon running?")

        with mock.patch.object(engine, "run", down):
            result = self.mh.run_cli("logs", "abcd1234")
        self.assertEqual(result.code, 1)
        self.assertIn("no Docker engine answers", result.stderr)
        self.assertNotIn("is not running", result.stderr)

    def test_a_saved_log_that_is_not_utf8_is_still_shown(self) -> None:
        saved = self.mh.home / ".bot-bottle" / "state" / "abcd1234" / "egress.jsonl"
        saved.parent.mkdir(parents=True)
        saved.write_bytes(json.dumps(DENY).encode() + b"\n\xff\xfe torn\n")
        result = self.run_logs("abcd1234", fake=FakeEngine(running=False))
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn("DENY", result.stdout)
        self.assertNotIn("Traceback", result.stderr)

    def test_bad_id(self) -> None:
        result = self.run_logs("../etc", fake=FakeEngine(running=False))
        self.assertEqual(result.code, 2)  # a usage error, as resume's and stop's are
        self.assertIn("not a bottle id", result.stderr)

    def test_listed_in_help(self) -> None:
        result = self.mh.run_cli("--help")
        self.assertIn("logs", result.stdout)


class FollowTest(unittest.TestCase):
    def test_follow_streams_until_the_exec_ends(self) -> None:
        mh = ManifestHome.for_test(self)
        popen_calls = []

        class FakePopen:
            def __init__(self, argv, **kw):
                popen_calls.append(argv)
                self.stdout = io.StringIO(json.dumps(ALLOW) + "\n" + json.dumps(DENY) + "\n")
                self.returncode = None

            def poll(self):
                return 0

            def wait(self, timeout=None):
                return 0

            def terminate(self):
                raise AssertionError("an ended exec is not terminated")

        with mock.patch.object(engine, "run", FakeEngine(running=True)), \
                mock.patch.object(engine, "docker_binary", return_value="/usr/bin/docker"), \
                mock.patch.object(subprocess, "Popen", FakePopen):
            result = mh.run_cli("logs", "abcd1234", "--follow", "--format", "json")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertEqual(len(result.stdout.splitlines()), 2)
        self.assertEqual(popen_calls[0], ["/usr/bin/docker", "exec", "bot-bottle-abcd1234-sidecar", "tail", "-n", "+1",
                                          "-F", logs.SIDECAR_LOG])

    def test_ctrl_c_ends_the_follow_cleanly(self) -> None:
        mh = ManifestHome.for_test(self)
        terminated = []

        class Interrupting:
            def __iter__(self):
                yield json.dumps(ALLOW) + "\n"
                raise KeyboardInterrupt

        class FakePopen:
            def __init__(self, argv, **kw):
                self.stdout = Interrupting()

            def poll(self):
                return None

            def terminate(self):
                terminated.append(True)

            def wait(self, timeout=None):
                return 0

        with mock.patch.object(engine, "run", FakeEngine(running=True)), \
                mock.patch.object(engine, "docker_binary", return_value="/usr/bin/docker"), \
                mock.patch.object(subprocess, "Popen", FakePopen):
            result = mh.run_cli("logs", "abcd1234", "-f")
        self.assertEqual(result.code, 0)
        self.assertEqual(terminated, [True])
        self.assertIn("ALLOW", result.stdout)


class FormatTest(unittest.TestCase):
    def test_text_line_parts(self) -> None:
        text = logs.format_text(REDACT).plain
        self.assertIn("03:04:05.678", text)
        self.assertIn("detectors github-token", text)
        self.assertIn("dlp redact", text)

    def test_colours(self) -> None:
        self.assertIn("green", str(logs.format_text(ALLOW).spans))
        self.assertIn("red", str(logs.format_text(DENY).spans))
        self.assertIn("yellow", str(logs.format_text(REDACT).spans))

    def test_tunnels_show_no_path(self) -> None:
        text = logs.format_text({**ALLOW, "connect": True, "method": "CONNECT", "path": ""}).plain
        self.assertIn("a.example:443 ", text + " ")

    def test_what_the_agent_wrote_cannot_drive_the_terminal(self) -> None:
        # An escape sequence in a logged path would set the operator's clipboard (OSC 52), clear
        # the screen or rewrite earlier lines; a bidi override would reorder what is shown.
        record = {**DENY, "path": "/x\x1b]52;c;ZXZpbA==\x07\u202e", "reason": "r\x1b[2J", "error": "e\x9b1m"}
        text = logs.format_text(record).plain
        for bad in ("\x1b", "\x07", "\u202e", "\x9b"):
            self.assertNotIn(bad, text)
        self.assertIn("/x\\x1b]52;c;ZXZpbA==\\x07\\u202e", text)

    def test_parse_lines_skips_non_records(self) -> None:
        self.assertEqual(list(logs.parse_lines(["", "x", "{}", "[1]", json.dumps(ALLOW)])), [ALLOW])


if __name__ == "__main__":
    unittest.main()
