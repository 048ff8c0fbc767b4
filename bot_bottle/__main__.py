from __future__ import annotations

import sys

from bot_bottle.cli import main

if __name__ == "__main__":
    sys.exit(main())
