"""What the terminal filter held back is in the bottle's record, in a real bottle.

As in test_agent_terminal_bottle.py: the "agent" is an interactive shell (a plugin provider whose
command is `sh`), started with the real CLI (`bot-bottle start --yes`) on a pseudo-terminal this
test holds as the operator's terminal. The shell prints a clipboard write (OSC 52) and the same
smuggled through tmux. While the agent still runs, `bot-bottle logs ID --format json` already has
an entry naming them; after the agent exits non-zero (its bottle is preserved), `bot-bottle logs
ID` names the clipboard write in text and in JSON. The payloads appear nowhere: not in what
`logs` prints, not in the supervise database's files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import unittest

from tests._docker import skip_unless_docker
from tests.integration._operator_terminal import CLIP, HOSTILE, TMUX, ShellAgentOnATerminal

CLIPBOARD = "clipboard access (OSC 52)"
PLAIN_PAYLOADS = (b"clip-payload", b"tmux-payload", CLIP, TMUX)


@skip_unless_docker()
class HeldSequencesAreRecorded(ShellAgentOnATerminal):
    PREFIX = "bb-termrec-"

    def logs(self, bottle_id: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot_bottle", "logs", bottle_id, *argv], cwd=self.home,
                              env=self.env, capture_output=True, text=True, timeout=120)

    def terminal_entries(self, bottle_id: str) -> list[dict[str, object]]:
        result = self.logs(bottle_id, "--format", "json")
        self.assertEqual(result.returncode, 0, result.stderr)
        records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        return [r for r in records if r.get("event") == "terminal"]

    def test_logs_names_the_clipboard_write_during_and_after_the_session(self) -> None:
        self.start_agent()
        self.until(b"READY", timeout=600, after=self.type("echo RE''ADY"))
        bottle_id = self.bottle_id()
        self.until(b"M5M6", after=self.type(HOSTILE))

        # While the agent runs: the entry is there within seconds, not only at the agent's end.
        deadline = time.monotonic() + 30
        entries = self.terminal_entries(bottle_id)
        while not entries and time.monotonic() < deadline:
            self._read(0.5)
            entries = self.terminal_entries(bottle_id)
        self.assertTrue(entries, "no terminal entry while the agent still runs")
        self.assertEqual(entries[0]["held"].get(CLIPBOARD), 1, entries)  # type: ignore[union-attr]

        mark = self.type("exit 3")  # non-zero: the bottle is preserved
        self.until(b"held back", timeout=120, after=mark)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and self._read(0.5):
            pass
        _, status = os.waitpid(self.pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 3, self.seen[-2000:])

        text = self.logs(bottle_id)
        self.assertEqual(text.returncode, 0, text.stderr)
        held_lines = [line for line in text.stdout.splitlines() if "HELD" in line]
        self.assertTrue(held_lines, text.stdout)
        self.assertIn(CLIPBOARD, held_lines[0])
        self.assertIn("tmux passthrough (DCS)", text.stdout)
        after = self.terminal_entries(bottle_id)
        totals: dict[str, int] = {}
        for entry in after:
            for kind, count in entry["held"].items():  # type: ignore[union-attr]
                totals[kind] = totals.get(kind, 0) + count
        self.assertEqual(totals.get(CLIPBOARD), 1, after)
        self.assertEqual(totals.get("tmux passthrough (DCS)"), 1, after)
        self.assertIn("title report (CSI 21 t)", totals)
        self.assertTrue(all("decision" not in entry for entry in after))

        stored = b"".join(p.read_bytes() for p in (self.home / ".bot-bottle").glob("supervise.db*"))
        self.assertIn(CLIPBOARD.encode(), stored)
        for payload in PLAIN_PAYLOADS:
            self.assertNotIn(payload.decode(), text.stdout + text.stderr)
            self.assertNotIn(payload, stored)


if __name__ == "__main__":
    unittest.main()
