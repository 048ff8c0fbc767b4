"""The bottle's CA, made by a child of the sidecar's PID 1 (``start_ca``).

Only the standard library's lightest modules are imported here: PID 1 begins the CA before it
imports the rest of the init (``boot``), and the child imports the certificate code itself,
which PID 1 never does (it would keep it for the bottle's whole life).

The files are the ones mitmproxy keeps in its confdir and loads at start, made with
``cryptography`` directly (mitmproxy's own maker would import much of mitmproxy first, on the
start's critical path), with an ECDSA P-256 key: made in a millisecond where an RSA one takes
tens, and mitmproxy signs its per-host certificates with it as well.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

MITM_CA_KEY = "mitmproxy-ca.pem"  # the key then the certificate: what mitmproxy loads its CA from
MITM_CA_CERT = "mitmproxy-ca-cert.pem"  # the public half, which the init publishes
MITM_DHPARAM = "mitmproxy-dhparam.pem"  # what mitmproxy writes there when it first loads its CA
# mitmproxy's ``key_size`` option: the size of the RSA CA it would make were this one missing.
MITM_CA_KEY_SIZE = 2048
MITM_CA_NAME = "mitmproxy"  # the CA's common name and organization, as mitmproxy names its own
NO_MITMPROXY = 3  # the CA child's status when the certificate code cannot be imported
# What asks PID 1 to stop (``docker stop``, a terminal's ^C, a hang-up); the CA child ends on them.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# The stop signals PID 1 caught before the init's own handlers were in place (``hold_stops``).
_held_stops: list[int] = []


def hold_stops() -> None:
    """Catch the stop signals until the init handles them itself (``take_held_stops``): the first
    thing PID 1 does (``boot``), so a stop asked for while it imports the init is not lost."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _hold_stop)


def _hold_stop(sig: int, _frame: object) -> None:
    _held_stops.append(sig)


def take_held_stops() -> list[int]:
    """The stop signals ``hold_stops`` caught so far (each given once), to act on now."""
    held = list(_held_stops)
    del _held_stops[:len(held)]
    return held

DEFAULT_STATE_DIR = Path("/var/lib/bottle")  # the init's ``--state-dir`` unless told otherwise
CONFDIR_NAME = "mitmproxy"  # the CA's folder in the state folder, where mitmproxy looks for it

CA_VALID_DAYS = 3650  # as long as a CA mitmproxy makes is valid
# Valid from a little before now, as mitmproxy's CA is: an agent whose clock lags the sidecar's
# would otherwise refuse every certificate it signs.
CA_BACKDATE_DAYS = 2

# RFC 7919's ffdhe2048 group. mitmproxy reads DH parameters from its confdir and writes its own
# there when the file is missing, which the proxy's account may not do: the file is made here.
# They serve only the DHE suites of a client that offers no ECDHE one.
FFDHE2048_PEM = b"""-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""


def start_ca(confdir: Path) -> int | None:
    """Start creating the bottle's CA where mitmproxy looks for it; the child's pid, or None when
    the CA is there already.

    mitmproxy would create the same files when it starts; making them first lets the host install
    the certificate in the agent while the proxy loads. A forked child does it: the certificate
    code imported in PID 1 would stay there for the bottle's whole life, and a fork skips a new
    interpreter's start (~0.1 s). The init waits for it (``init.finish_ca``).
    """
    if all((confdir / name).is_file() for name in (MITM_CA_CERT, MITM_DHPARAM)):
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    # Held across the fork: a stop that comes meanwhile reaches the child only once it has the
    # default handlers back (it ends), never the init's handler in a copy of the init.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    pid = os.fork()
    if pid == 0:  # the child: never returns into the init's code
        code = 1
        try:
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
            code = create_ca_files(confdir)
        except BaseException as exc:  # noqa: BLE001 - reported by the parent, from this line
            sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
            sys.stderr.flush()
        finally:
            os._exit(code)
    signal.pthread_sigmask(signal.SIG_SETMASK, held)
    return pid


def create_ca_files(confdir: Path) -> int:
    """The CA files mitmproxy loads from ``confdir`` (what ``start_ca``'s child runs); 0 once
    they are there, ``NO_MITMPROXY`` when the certificate code is missing (the proxy makes them).

    The certificate is written last, and whole: with the DH parameters it is what says the CA is
    complete (``start_ca``).
    """
    cert = confdir / MITM_CA_CERT
    if cert.is_file():
        if not (confdir / MITM_DHPARAM).is_file():
            _write(confdir / MITM_DHPARAM, FFDHE2048_PEM, 0o644)
        return 0
    try:
        key_pem, cert_pem = make_ca_pems()
    except ImportError:
        return NO_MITMPROXY
    confdir.mkdir(parents=True, exist_ok=True)
    _write(confdir / MITM_CA_KEY, key_pem + cert_pem, 0o600)
    _write(confdir / MITM_DHPARAM, FFDHE2048_PEM, 0o644)
    _write(cert, cert_pem, 0o644)
    return 0


def _write(path: Path, data: bytes, mode: int) -> None:
    """``data`` in ``path`` with ``mode`` from its first byte on (the key is never readable by others,
    whatever the umask or an older file's mode), renamed into place whole: a child stopped part
    way leaves no short file under a name the next start takes as made."""
    part = path.with_name(f".{path.name}.part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    part.replace(path)


def make_ca_pems() -> tuple[bytes, bytes]:
    """A new CA: its private key and its self-signed certificate, in PEM.

    The certificate is the one mitmproxy would make: its name, a CA for any depth, allowed to sign
    certificates and CRLs, for server authentication, with a key identifier.
    """
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, MITM_CA_NAME),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, MITM_CA_NAME),
    ])
    now = datetime.datetime.now(datetime.timezone.utc)
    usage = x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=CA_BACKDATE_DAYS))
        .not_valid_after(now + datetime.timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)
