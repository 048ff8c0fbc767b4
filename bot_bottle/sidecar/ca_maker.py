"""The bottle's CA, made by a child of the sidecar's PID 1 (``start_ca``).

Only the standard library's lightest modules are imported here: PID 1 begins the CA before it
imports the rest of the init (``boot``), and the child imports mitmproxy's certificate code
itself, which PID 1 never does (it would keep ~15 MB of it for the bottle's whole life).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

MITM_CA_CERT = "mitmproxy-ca-cert.pem"  # the public half mitmproxy writes into its confdir
MITM_DHPARAM = "mitmproxy-dhparam.pem"  # what mitmproxy writes there when it first loads its CA
MITM_CA_KEY_SIZE = 2048  # mitmproxy's own default (its ``key_size`` option)
NO_MITMPROXY = 3  # the CA child's status when mitmproxy cannot be imported

DEFAULT_STATE_DIR = Path("/var/lib/bottle")  # the init's ``--state-dir`` unless told otherwise
CONFDIR_NAME = "mitmproxy"  # the CA's folder in the state folder, where mitmproxy looks for it


def start_ca(confdir: Path) -> int | None:
    """Start creating the bottle's CA where mitmproxy looks for it; the child's pid, or None when
    the CA is there already.

    mitmproxy would create the same files when it starts; making them first lets the host install
    the certificate in the agent while the proxy loads. A forked child does it: importing mitmproxy's
    certificate code in PID 1 would keep ~15 MB of it there for the bottle's whole life, and a fork
    skips a new interpreter's start (~0.1 s). The init waits for it (``init.finish_ca``).
    """
    if all((confdir / name).is_file() for name in (MITM_CA_CERT, MITM_DHPARAM)):
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the init's code
        code = 1
        try:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            code = create_ca_files(confdir)
        except BaseException as exc:  # noqa: BLE001 - reported by the parent, from this line
            sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
            sys.stderr.flush()
        finally:
            os._exit(code)
    return pid


def create_ca_files(confdir: Path) -> int:
    """mitmproxy's own CA files in ``confdir`` (what ``start_ca``'s child runs).

    The DH parameters too, which mitmproxy would otherwise write when it first loads the CA: the
    proxy's account only reads this folder.
    """
    try:
        from mitmproxy.certs import DEFAULT_DHPARAM, CertStore
    except ImportError:
        return NO_MITMPROXY
    confdir.mkdir(parents=True, exist_ok=True)
    if not (confdir / MITM_CA_CERT).is_file():
        CertStore.create_store(confdir, "mitmproxy", MITM_CA_KEY_SIZE)
    dhparam = confdir / MITM_DHPARAM
    if not dhparam.is_file():
        dhparam.write_bytes(DEFAULT_DHPARAM)
    return 0
