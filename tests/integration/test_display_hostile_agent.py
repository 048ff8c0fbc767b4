"""What a hostile agent's text does on the operator's terminal, through a real bottle.

The agent sends requests with terminal escapes, C1 controls, bidi overrides, tabs and Rich markup
in their targets (raw bytes on a socket to its proxy, as no well-behaved client would), and files
a supervise proposal whose justification holds the same. The operator then reads them as a user
does: ``bot-bottle logs`` (text and JSON) and ``bot-bottle supervise --once`` (text and JSON) in
a subprocess with HOME pointed at this test's folder. Nothing the agent wrote may reach the
terminal as a control character, and each egress decision is one line.

Everything runs on ``--internal`` networks this test creates.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
import unittest
from pathlib import Path

from tests._docker import skip_unless_docker
from tests.integration import _harness as h

REPO = Path(__file__).resolve().parents[2]
MCP_URL = "http://supervise.bottle.internal/mcp"

# Raw requests to the proxy (127.0.0.1:3128 in the agent, ``launch.PROXY_PORT``), written with
# Python escapes and sent as their bytes by bash's printf over /dev/tcp. mitmproxy refuses a
# request line with a tab, a line break or a byte above 0x7f (400, nothing logged), but takes
# other ASCII controls: these reach the egress log as the agent wrote them.
HOSTILE_REQUESTS = (
    # An OSC 52 clipboard write in the path of an allowed host.
    "GET http://allowed.example/a\x1b]52;c;ZXZpbA==\x07b HTTP/1.1\r\nHost: allowed.example\r\n\r\n",
    # A title set, then cursor up and erase line (to overwrite the line above), to a refused host.
    "GET http://evil.example/x\x1b]0;owned\x07y\x1b[1A\x1b[2Kz HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    # Rich markup in the path.
    "GET http://evil.example/[bold]q[/][link=http://evil.example]l[/link] HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    # Refused by mitmproxy itself (never logged): a byte above 0x7f, a tab.
    "GET http://evil.example/b\u202ec\td HTTP/1.1\r\nHost: evil.example\r\n\r\n",
)
# What must never reach the operator's terminal raw: ESC, BEL, the C1 CSI, a bidi override.
FORBIDDEN = ("\x1b", "\x07", "\x9b", "\u202e")
HOSTILE_JUSTIFICATION = ("need it\x1b]8;;http://evil.example\x07click\x1b]8;;\x07 \x1b[2A\x1b[2K"
                         "[link=http://evil.example]approved[/link] [/] \u202eevil\r\n! grants: nothing")


def _send(raw: str) -> str:
    """A shell command sending ``raw``'s UTF-8 bytes to the proxy and reading its answer."""
    escaped = "".join(chr(b) if 0x20 <= b < 0x7f and b not in (0x5c, 0x25) else f"\\x{b:02x}" for b in raw.encode())
    return (f"exec 3<>/dev/tcp/127.0.0.1/3128 && printf '%b' {shlex.quote(escaped)} >&3 && "
            "timeout 5 cat <&3 >/dev/null; exec 3>&-")


@skip_unless_docker()
class HostileAgentTextTest(unittest.TestCase):
    def setUp(self) -> None:
        self.home = h.TempHome(self).path
        self.env = {**os.environ, "HOME": str(self.home), "PYTHONPATH": str(REPO), "COLUMNS": "400"}
        self.env.pop("BOT_BOTTLE_DEBUG", None)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot_bottle", *args], cwd=self.home, env=self.env,
                              capture_output=True, text=True, timeout=180)

    def assert_inert(self, result: subprocess.CompletedProcess[str]) -> None:
        for stream in (result.stdout, result.stderr):
            for char in FORBIDDEN:
                self.assertNotIn(char, stream, f"{char!r} reached the terminal:\n{stream!r}")
        self.assertNotIn("internal error", result.stderr)

    def console_screen(self, layout: object, bottle_id: str) -> str:
        """The console at 160x50 over this home's store, synced with this bottle only, its
        proposal selected: the screen as composed, detail and events included."""
        from bot_bottle.supervise import apply
        from bot_bottle.supervise.console import SuperviseApp
        from bot_bottle.supervise.store import Store
        from bot_bottle.supervise.sync import BottleInfo, sync
        from tests.unit.test_supervise_console_screen import screen_text

        db = Store.default_path(self.home / ".bot-bottle")
        info = BottleInfo(bottle_id, "tester", None, None, "docker", "")
        app = SuperviseApp(open_store=lambda: Store(db), sync_fn=lambda st: sync(st, bottles=[info]),
                           context=apply.Context(layout=layout), stop_fn=lambda _: None, operator="test",
                           interval=0)
        seen: list[str] = []

        async def main() -> None:
            async with app.run_test(size=(160, 50), notifications=True) as pilot:
                for _ in range(200):
                    await pilot.pause(0.1)
                    if app.syncs >= 1 and app.pending:
                        break
                await pilot.pause(0.3)
                seen.append(screen_text(app))

        asyncio.run(main())
        return seen[0]

    def test_logs_and_supervise_show_the_agents_text_inert(self) -> None:
        layout = h.write_manifests(self.home)
        internet = h.Internet.create("allowed.example", "evil.example")
        self.addCleanup(internet.close)
        bottle, launcher = h.launch(self, h.plan_for(layout), layout.state_dir, internet=internet)
        bottle_id = launcher.names.id
        self.addCleanup(h.remove_bottle, bottle_id)

        for raw in HOSTILE_REQUESTS:
            sent = bottle.exec(f"bash -c {shlex.quote(_send(raw))}")
            self.assertNotIn("No such file", sent.stderr)

        # JSON: every line valid JSON, ASCII only (json.dumps escapes whatever the agent wrote).
        as_json = self.cli("logs", bottle_id, "--format", "json")
        self.assertEqual(as_json.returncode, 0, as_json.stderr)
        self.assert_inert(as_json)
        records = [json.loads(line) for line in as_json.stdout.splitlines() if line.strip()]
        self.assertTrue(as_json.stdout.isascii())
        paths = " ".join(str(r.get("path")) for r in records)
        self.assertIn("/a\x1b]52;c;ZXZpbA==\x07b", paths)  # the agent's bytes did reach the log: the test is real

        # Text: each decision on one line, every control shown as an escape, markup as written.
        as_text = self.cli("logs", bottle_id)
        self.assertEqual(as_text.returncode, 0, as_text.stderr)
        self.assert_inert(as_text)
        self.assertEqual(len(as_text.stdout.splitlines()), len(records), as_text.stdout)
        self.assertIn("/a\\x1b]52;c;ZXZpbA==\\x07b", as_text.stdout)
        self.assertIn("/x\\x1b]0;owned\\x07y\\x1b[1A\\x1b[2Kz", as_text.stdout)
        self.assertIn("/[bold]q[/][link=http://evil.example]l[/link]", as_text.stdout)

        # A proposal whose justification is hostile, read with `supervise --once`.
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "request-egress", "arguments": {"host": "docs.example", "justification": HOSTILE_JUSTIFICATION}}})
        ask = (f"curl -sS --max-time 60 -X POST {MCP_URL} -H 'Content-Type: application/json' "
               "-H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2025-06-18' "
               f"--data-binary {shlex.quote(body)}")
        # The agent's call waits for a decision: it is ended with the bottle, or here.
        waiting = subprocess.Popen(bottle.exec_argv(ask), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(_end, waiting)
        h.wait_for(lambda: "docs.example" in self.cli("supervise", "--once", "--format", "json").stdout,
                   "the proposal in `supervise --once`", timeout=60)
        once = self.cli("supervise", "--once")
        self.assertEqual(once.returncode, 0, once.stderr)
        self.assert_inert(once)
        self.assertIn("docs.example", once.stdout)
        self.assertIn("[link=http://evil.example]approved[/link] [/]", once.stdout)
        once_json = self.cli("supervise", "--once", "--format", "json")
        self.assert_inert(once_json)
        pending = json.loads(once_json.stdout)["pending"]
        self.assertEqual([p["justification"] for p in pending if p["summary"].startswith("docs.example")],
                         [HOSTILE_JUSTIFICATION.strip()])
        screen = self.console_screen(layout, bottle_id)
        for char in FORBIDDEN:
            self.assertNotIn(char, screen)
        self.assertIn("[link=http://evil.example]approved[/link]", screen)


def _end(proc: subprocess.Popen[bytes]) -> None:
    """End a ``docker exec`` this test started (its container may be gone, leaving it waiting)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)

if __name__ == "__main__":
    unittest.main()
