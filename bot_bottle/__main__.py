from __future__ import annotations

from bot_bottle.cli import run

if __name__ == "__main__":
    run()
