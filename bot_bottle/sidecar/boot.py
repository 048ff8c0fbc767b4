"""PID 1 of the sidecar container: begin the bottle's CA, then run the init (``init.main``).

Making the CA (``cryptography``'s EC module imported, a key made, a certificate signed) is a
step before the host can trust the CA in the agent, and the launch waits on it. Begun here, before
the init imports its own modules (a few hundredths of a second on an idle host, a tenth and more
on a busy one), it runs alongside them instead of after.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bot_bottle.sidecar import ca_maker


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # Where the init keeps its state by default; a start told another folder (``--state-dir``)
    # finds this CA is not its own and makes one there (``init.main``).
    confdir = ca_maker.DEFAULT_STATE_DIR / ca_maker.CONFDIR_NAME
    early = None if {"-h", "--help"} & set(args) else (confdir, ca_maker.start_ca(confdir))

    from bot_bottle.sidecar import init

    return init.main(args, early_ca=early)


if __name__ == "__main__":
    # First: PID 1 without a handler of its own never sees a SIGTERM (the kernel drops it), and
    # `docker stop` would wait its whole timeout for a sidecar asked to stop while it starts.
    ca_maker.hold_stops()
    sys.exit(main())
