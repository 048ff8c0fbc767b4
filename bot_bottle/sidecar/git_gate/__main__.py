"""``python -m bot_bottle.sidecar.git_gate --config PATH --port PORT --state-dir DIR``

Prepares one bare mirror per configured repo under the state dir (with the pre-receive hook),
then serves smart HTTP on ``--listen`` (loopback by default: the egress proxy routes the reserved
name ``git-gate.bottle.internal`` here). Exits non-zero when the config is unusable, so the
sidecar's init notices and the bottle fails closed. It does not contact any upstream at start:
each fetch or push does, and reports its own failure to the agent.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from bot_bottle.sidecar.git_gate.config import ConfigError, load

DEFAULT_CONFIG = Path("/etc/bot-bottle/git-gate.json")
DEFAULT_STATE_DIR = Path("/var/lib/bottle/git-gate")
DEFAULT_PORT = 9420


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot_bottle.sidecar.git_gate", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("--listen", default="127.0.0.1", help="address to bind (default: loopback only)")
    args = parser.parse_args(argv)
    try:
        # The mirrors' pre-receive check scans with the DLP engine, which these import: a copy of
        # the package without it must not serve a push, nor start as if it could check one.
        from bot_bottle.sidecar.git_gate.mirror import Mirrors
        from bot_bottle.sidecar.git_gate.server import log, make_server
    except ImportError as exc:
        _start_failed(f"cannot load the push check ({type(exc).__name__}: {exc.name or exc}): this copy of "
                      "bot-bottle is incomplete (a push is scanned by bot_bottle.sidecar.dlp); rebuild the sidecar "
                      "image")
        return 1
    try:
        config = load(args.config)
        args.state_dir.mkdir(parents=True, exist_ok=True)
        args.state_dir.chmod(0o700)
        mirrors = Mirrors(config, args.config.resolve(), args.state_dir)
        mirrors.prepare()
        server = make_server(config, mirrors, args.state_dir, args.listen, args.port)
    except (ConfigError, OSError, RuntimeError) as exc:
        log("start-failed", error=str(exc))
        return 1

    def stop(*_: object) -> None:
        # shutdown() waits for serve_forever to return: call it from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log("ready", listen=args.listen, port=server.server_address[1], repos=[r.name for r in config.repos])
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    log("stopped")
    return 0


def _start_failed(error: str) -> None:
    """``server.log``'s line, for when the server module itself cannot be imported."""
    sys.stderr.write(json.dumps({"ts": round(time.time(), 3), "event": "git-gate", "what": "start-failed",
                                 "error": error}) + "\n")
    sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
