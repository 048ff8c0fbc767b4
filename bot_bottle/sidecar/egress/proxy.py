"""The egress proxy process: mitmproxy's proxy core with the egress addon and nothing else.

``mitmdump`` loads all 31 of mitmproxy's default addons, and importing ``mitmproxy.addons``
imports every one of them (flask for the onboarding app, passlib for proxy auth, playback,
HAR export, ...): about a quarter of a second of the sidecar's start and ~19 MB of its memory,
for features a bottle never turns on. This entry point imports only the addons it runs, by
registering ``mitmproxy.addons`` as a bare package before anything imports it.

Kept, and why: ``core`` (option checks), ``proxyserver`` (listening, connections),
``next_layer`` (which protocol layer a connection gets; ``rawtcp`` lives there),
``tlsconfig`` (interception with the bottle's CA, upstream verification), ``block`` (refuses
clients from outside loopback), ``disable_h2c`` (refuses cleartext HTTP/2 upgrades, a smuggling
shape), ``errorcheck`` (an error logged while starting stops the process), the terminal log,
and the egress addon. The rest are off in a bottle anyway (playback, rewriting, saving, proxy
auth, DNS and reverse modes) or serve mitmproxy's own UIs.

Arguments: ``--listen-host``, ``--listen-port`` and ``--set name=value`` as ``mitmdump``
takes them, and ``--wait-for PATH``: the init makes the bottle's CA while this process imports
its code, and says it is complete by creating PATH. A bad option (a broken policy, say) is one
line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import signal
import sys
import types
from collections.abc import Sequence
from pathlib import Path


SWITCH_INTERVAL = 0.001  # seconds; Python's default is 0.005


def _bare_addons_package() -> None:
    """Make ``mitmproxy.addons`` importable without running its ``__init__``."""
    if "mitmproxy.addons" in sys.modules:
        return
    spec = importlib.util.find_spec("mitmproxy")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("mitmproxy is not installed")
    package = types.ModuleType("mitmproxy.addons")
    package.__path__ = [str(Path(next(iter(spec.submodule_search_locations))) / "addons")]
    sys.modules["mitmproxy.addons"] = package


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bottle-proxy", description="The bottle's egress proxy.")
    p.add_argument("--listen-host", default="127.0.0.1")
    p.add_argument("--listen-port", type=int, required=True)
    p.add_argument("--set", dest="options", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--wait-for", type=Path, metavar="PATH",
                   help="load the CA and serve only once PATH exists (the sidecar's init makes the CA "
                        "while this process imports its code)")
    p.add_argument("--wait-timeout", type=float, default=WAIT_FOR_TIMEOUT, metavar="SECONDS",
                   help=f"give up on --wait-for after this long (default {WAIT_FOR_TIMEOUT:g})")
    return p


# As long as the init gives any daemon to come up: past that, the start has failed anyway.
WAIT_FOR_TIMEOUT = 60.0


async def _appeared(path: Path, timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not path.exists():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def _serve(args: argparse.Namespace) -> int:
    from mitmproxy import exceptions, master, options
    from mitmproxy.addons import block, core, disable_h2c, errorcheck, next_layer, proxyserver, tlsconfig

    from bot_bottle.sidecar.egress import addon

    if args.wait_for is not None and not await _appeared(args.wait_for, args.wait_timeout):
        print(f"bottle-proxy: {args.wait_for} did not appear within {args.wait_timeout:g} s", file=sys.stderr, flush=True)
        return 1
    # As mitmdump sets them: the terminal log filters by termlog_verbosity.
    logging.getLogger().setLevel(logging.DEBUG)
    for name in ("asyncio", "hpack", "quic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    opts = options.Options()
    proxy = master.Master(opts, with_termlog=True)
    proxy.addons.add(core.Core(), proxyserver.Proxyserver(), next_layer.NextLayer(), tlsconfig.TlsConfig(),
                     block.Block(), disable_h2c.DisableH2C(), errorcheck.ErrorCheck(), *addon.addons)
    try:
        opts.update(listen_host=args.listen_host, listen_port=args.listen_port)
        opts.set(*args.options)
    except exceptions.OptionsError as exc:
        print(f"bottle-proxy: {exc}", file=sys.stderr, flush=True)
        return 1
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, proxy.shutdown)
    await proxy.run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _bare_addons_package()
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    # While a large scan runs on its worker thread (``scan_worker``), every wake-up of the event
    # loop waits for the scan to hand the GIL over: 5 ms by default. Measured in the benchmark's
    # lab during a held 7.5 MB JSON scan, small requests on another connection took 24-150 ms
    # each at 5 ms, 5-20 ms at 1 ms; the scan itself took no longer.
    sys.setswitchinterval(SWITCH_INTERVAL)
    return asyncio.run(_serve(args))


if __name__ == "__main__":
    sys.exit(main())
