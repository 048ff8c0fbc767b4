"""bot-bottle: run AI coding agents inside bottles that hold only what their manifest grants."""

from __future__ import annotations

__version__ = "0.1.0"
