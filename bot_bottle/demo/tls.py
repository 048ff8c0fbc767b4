"""A throwaway CA and server certificates for the demo's and tests' fake upstreams (openssl CLI)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.errors import BotBottleError


@dataclass(frozen=True)
class ThrowawayCA:
    cert: Path
    key: Path

    def issue(self, folder: Path, name: str, hosts: list[str]) -> tuple[Path, Path]:
        """A server certificate for ``hosts`` signed by this CA; returns (cert, key)."""
        key = folder / f"{name}.key"
        csr = folder / f"{name}.csr"
        cert = folder / f"{name}.crt"
        ext = folder / f"{name}.ext"
        ext.write_text("subjectAltName=" + ",".join(f"DNS:{h}" for h in hosts) + "\n"
                       "extendedKeyUsage=serverAuth\n")
        _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
                 "-subj", f"/CN={hosts[0]}")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                 "-CAcreateserial", "-out", str(cert), "-days", "2", "-sha256", "-extfile", str(ext))
        key.chmod(0o644)  # read by the fake server's user inside its container
        return cert, key


def _openssl(*args: str) -> None:
    if shutil.which("openssl") is None:
        raise BotBottleError("the openssl command is needed for the demo's certificates", hint="apt-get install openssl")
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise BotBottleError(f"openssl {args[0]} failed: {result.stderr.strip()[-300:]}")


def make_ca(folder: Path) -> ThrowawayCA:
    key = folder / "test-ca.key"
    cert = folder / "test-ca.crt"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
             "-days", "2", "-subj", "/CN=bot-bottle test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return ThrowawayCA(cert=cert, key=key)
