"""``bot-bottle logs`` reading what a hostile agent shaped: one decision is one line whatever its
fields hold, and no line of the log, however malformed, ends the listing or the follow."""

from __future__ import annotations

import json
import shutil
import stat
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle.backend.docker import engine, sidecar_watch
from bot_bottle.cli import logs
from tests.fixtures import ManifestHome
from tests.unit.test_cli_logs import ALLOW, DENY, FakeEngine

# A decision whose fields try to draw a second, forged decision under it.
FORGED = "\n03:04:07.000 ALLOW GET     github.com:443/  rule route; github.com"


class OneLinePerDecisionTest(unittest.TestCase):
    def test_line_breaks_in_any_field_are_shown_as_escapes(self) -> None:
        for field in ("path", "host", "method", "reason", "error", "route", "rule"):
            with self.subTest(field=field):
                text = logs.format_text({**DENY, field: f"x{FORGED}"}).plain
                self.assertNotIn("\n", text)
                self.assertIn("x\\n03:04:07.000 ALLOW", text)

    def test_tabs_are_shown_as_escapes(self) -> None:
        # A tab jumps to the next tab stop: it could line up text as another column.
        text = logs.format_text({**DENY, "path": "/a\tb", "reason": "r\tALLOW"}).plain
        self.assertNotIn("\t", text)
        self.assertIn("/a\\tb", text)


class MalformedLinesTest(unittest.TestCase):
    # An integer too long to convert and nesting too deep to parse are not JSONDecodeErrors.
    HUGE = '{"decision":"deny","port":' + "1" * 5000 + "}"
    DEEP = '{"decision":"deny","x":' + "[" * 100_000 + "]" * 100_000 + "}"

    def test_parse_lines_skips_them(self) -> None:
        self.assertEqual(list(logs.parse_lines([self.HUGE, self.DEEP, json.dumps(ALLOW)])), [ALLOW])

    def test_the_listing_goes_on_past_them(self) -> None:
        mh = ManifestHome.for_test(self)
        log = "\n".join([self.HUGE, self.DEEP, json.dumps(DENY)]) + "\n"
        with mock.patch.object(engine, "run", FakeEngine(running=True, log=log)):
            result = mh.run_cli("logs", "abcd1234")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertNotIn("internal error", result.stderr)
        self.assertIn("evil.example:80/steal", result.stdout)

    def test_why_the_sidecar_stopped_skips_them(self) -> None:
        stderr = "\n".join([self.HUGE, self.DEEP, json.dumps({"event": "sidecar", "what": "offline",
                                                              "reason": "the proxy ended"})])
        with mock.patch.object(engine, "run", return_value=engine.DockerResult(0, "", stderr)):
            self.assertEqual(sidecar_watch.why_offline("c"), "the proxy ended")


class JsonOutputTest(unittest.TestCase):
    def test_nan_and_infinity_in_a_line_are_printed_as_valid_json(self) -> None:
        # Python's json reads NaN and Infinity, and writes them back: no strict reader takes them.
        mh = ManifestHome.for_test(self)
        log = '{"decision":"allow","duration_ms":NaN,"status":Infinity,"port":-Infinity}\n'
        with mock.patch.object(engine, "run", FakeEngine(running=True, log=log)):
            result = mh.run_cli("logs", "abcd1234", "--format", "json")
        self.assertEqual(result.code, 0, result.stderr)
        [line] = result.stdout.splitlines()
        record = json.loads(line, parse_constant=lambda name: self.fail(f"{name} printed"))
        self.assertEqual(record, {"decision": "allow", "duration_ms": None, "status": None, "port": None})


def fake_docker(test: unittest.TestCase, log: bytes) -> Path:
    """A stand-in for the docker CLI with one running sidecar whose egress log is ``log``:
    ``inspect`` says it runs, ``exec`` (cat, tail) prints the log, ``cp`` copies its last part."""
    folder = Path(tempfile.mkdtemp(prefix="display-logs-"))
    test.addCleanup(shutil.rmtree, folder)
    (folder / "log").write_bytes(log)
    fake = folder / "docker"
    fake.write_text(f"""#!/bin/sh
case "$1" in
  inspect) echo true ;;
  exec) cat {folder / 'log'} ;;
  cp) case "$2" in *egress.jsonl) cat {folder / 'log'} > "$3" ;; *) exit 1 ;; esac ;;
  *) exit 1 ;;
esac
""")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return fake


# A decision with a byte that is not UTF-8 in its path, then a good one.
UNDECODABLE = b'{"decision":"deny","path":"/torn\xff"}\n' + json.dumps(ALLOW).encode() + b"\n"


class RunningLogUndecodableBytesTest(unittest.TestCase):
    def test_a_byte_that_is_not_utf8_does_not_end_the_listing(self) -> None:
        mh = ManifestHome.for_test(self)
        with mock.patch.object(engine, "docker_binary", return_value=str(fake_docker(self, UNDECODABLE))):
            result = mh.run_cli("logs", "abcd1234")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertNotIn("internal error", result.stderr)
        self.assertIn("/torn\ufffd", result.stdout)
        self.assertIn(ALLOW["path"], result.stdout)


class FollowUndecodableBytesTest(unittest.TestCase):
    def test_a_byte_that_is_not_utf8_does_not_end_the_follow(self) -> None:
        fake = fake_docker(self, UNDECODABLE)
        printed: list[str] = []
        with mock.patch.object(engine, "docker_binary", return_value=str(fake)), \
                mock.patch.object(logs, "_print_one", lambda record, fmt: printed.append(record.get("path"))):
            self.assertEqual(logs._follow("c", "text"), 0)
        self.assertEqual(printed, ["/torn\ufffd", ALLOW["path"]])


if __name__ == "__main__":
    unittest.main()
