"""One row of the demo's table: what the agent tried, what should happen, what did."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    attempt: str
    expected: str
    observed: str
    held: bool
