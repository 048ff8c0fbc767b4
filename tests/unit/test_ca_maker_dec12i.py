"""The bottle's CA as ``ca_maker`` makes it without mitmproxy: the files mitmproxy loads, an ECDSA
P-256 key that mitmproxy signs its leaf certificates with and a TLS client accepts, the key's
permissions, and no mitmproxy import in the CA child."""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import unittest
from pathlib import Path

from bot_bottle.sidecar import ca_maker
from tests._requires import requires

REPO = Path(__file__).resolve().parents[2]

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import dh, ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    from cryptography.x509.verification import PolicyBuilder, Store
    from mitmproxy.addons.tlsconfig import _DEFAULT_CIPHERS
    from mitmproxy.certs import CertStore
    from OpenSSL import SSL, crypto

    HAVE_MITMPROXY = True
except ImportError:
    HAVE_MITMPROXY = False

HOST = "api.example.test"
# mitmproxy's own names for the files of its confdir (``CertStore.from_store``)
KEY_AND_CERT, CERT, DHPARAM = "mitmproxy-ca.pem", "mitmproxy-ca-cert.pem", "mitmproxy-dhparam.pem"


def _made(tmp: str) -> Path:
    confdir = Path(tmp) / "mitmproxy"
    if ca_maker.create_ca_files(confdir) != 0:
        raise AssertionError("the CA was not made")
    return confdir


@requires(HAVE_MITMPROXY, "mitmproxy (dev extra)")
class LayoutTest(unittest.TestCase):
    def test_mitmproxy_loads_the_ca_as_it_is_and_signs_a_leaf_that_verifies(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            confdir = _made(tmp)
            before = {p.name: p.read_bytes() for p in confdir.iterdir()}
            store = CertStore.from_store(confdir, "mitmproxy", 2048)
            self.assertEqual({p.name: p.read_bytes() for p in confdir.iterdir()}, before, "nothing remade")
            ca = x509.load_pem_x509_certificate(before[CERT])
            self.assertEqual(store.default_ca.fingerprint(), ca.fingerprint(hashes.SHA256()))
            entry = store.get_cert(HOST, [x509.DNSName(HOST)])
            leaf = entry.cert._cert
            leaf.verify_directly_issued_by(ca)
            verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName(HOST))
            chain = verifier.verify(leaf, [])
            self.assertEqual(chain[-1], ca)

    def test_the_key_file_holds_the_key_then_the_certificate_and_the_public_file_no_key(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            confdir = _made(tmp)
            cert_pem = (confdir / CERT).read_bytes()
            self.assertNotIn(b"PRIVATE KEY", cert_pem)
            both = (confdir / KEY_AND_CERT).read_bytes()
            key = serialization.load_pem_private_key(both, None)
            self.assertEqual(x509.load_pem_x509_certificates(both), [x509.load_pem_x509_certificate(cert_pem)])
            self.assertEqual(key.public_key(), x509.load_pem_x509_certificate(cert_pem).public_key())
            self.assertEqual(sorted(p.name for p in confdir.iterdir()),
                             sorted([CERT, KEY_AND_CERT, DHPARAM]))

    def test_the_key_is_ecdsa_p256_and_the_certificate_a_ca_signed_with_sha256(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            ca = x509.load_pem_x509_certificate((_made(tmp) / CERT).read_bytes())
        key = ca.public_key()
        self.assertIsInstance(key, ec.EllipticCurvePublicKey)
        self.assertEqual(key.curve.name, "secp256r1")
        self.assertIsInstance(ca.signature_hash_algorithm, hashes.SHA256)
        name = [(a.oid, a.value) for a in ca.subject]
        self.assertEqual(name, [(NameOID.COMMON_NAME, "mitmproxy"), (NameOID.ORGANIZATION_NAME, "mitmproxy")])
        self.assertEqual(ca.issuer, ca.subject)
        basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
        self.assertTrue(basic.critical and basic.value.ca)
        self.assertIsNone(basic.value.path_length)
        usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
        self.assertTrue(usage.critical and usage.value.key_cert_sign and usage.value.crl_sign)
        self.assertFalse(usage.value.digital_signature or usage.value.key_encipherment)
        eku = ca.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertEqual(list(eku), [ExtendedKeyUsageOID.SERVER_AUTH])
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        self.assertEqual(ski, x509.SubjectKeyIdentifier.from_public_key(key))
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(ca.not_valid_before_utc, now - datetime.timedelta(days=1), "an agent's lagging clock")
        self.assertGreater(ca.not_valid_after_utc, now + datetime.timedelta(days=9 * 365))

    def test_each_ca_is_new(self) -> None:
        with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
            a, b = (x509.load_pem_x509_certificate((_made(t) / CERT).read_bytes()) for t in (one, two))
        self.assertNotEqual(a.public_key(), b.public_key())
        self.assertNotEqual(a.serial_number, b.serial_number)

    def test_the_dh_parameters_are_rfc_7919_ffdhe2048_and_mitmproxy_reads_them(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = _made(tmp) / DHPARAM
            params = serialization.load_pem_parameters(path.read_bytes())
            self.assertIsNotNone(CertStore.load_dhparam(path))
        self.assertIsInstance(params, dh.DHParameters)
        numbers = params.parameter_numbers()
        self.assertEqual((numbers.g, numbers.p.bit_length()), (2, 2048))
        ones = (1 << 64) - 1  # RFC 7919's groups begin and end with 64 bits set
        self.assertEqual((numbers.p >> (2048 - 64), numbers.p & ones), (ones, ones))


@requires(HAVE_MITMPROXY, "mitmproxy (dev extra)")
class EncodingTest(unittest.TestCase):
    """The CA as written, against what cryptography (OpenSSL) writes for the same key and certificate."""

    def test_the_key_file_is_what_openssl_writes_for_that_key(self) -> None:
        key_pem, _ = ca_maker.make_ca_pems()
        key = serialization.load_pem_private_key(key_pem, None)
        again = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption())
        self.assertEqual(key_pem, again)

    def test_the_certificate_s_public_key_is_what_openssl_writes_for_it(self) -> None:
        _, cert_pem = ca_maker.make_ca_pems()
        cert = x509.load_pem_x509_certificate(cert_pem)
        spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
        self.assertIn(spki, cert.tbs_certificate_bytes)
        self.assertEqual(cert.public_bytes(serialization.Encoding.PEM), cert_pem)


@requires(HAVE_MITMPROXY, "mitmproxy (dev extra)")
class HandshakeTest(unittest.TestCase):
    """The proxy's side of a handshake as mitmproxy sets it up (its leaf, the CA's key through
    pyOpenSSL, its default cipher list) against a client that trusts only the bottle's CA."""

    def handshake(self, version: ssl.TLSVersion) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            confdir = _made(tmp)
            store = CertStore.from_store(confdir, "mitmproxy", 2048)
            entry = store.get_cert(HOST, [x509.DNSName(HOST)])
            server_ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
            server_ctx.set_cipher_list(":".join(_DEFAULT_CIPHERS).encode())
            client_ctx = ssl.create_default_context(cafile=str(confdir / CERT))
        client_ctx.minimum_version = client_ctx.maximum_version = version
        ours, theirs = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)
        server = SSL.Connection(server_ctx, theirs)
        server.use_certificate(entry.cert.to_pyopenssl())
        server.use_privatekey(crypto.PKey.from_cryptography_key(entry.privatekey))
        server.set_accept_state()
        failed: list[BaseException] = []

        def serve() -> None:
            try:
                server.do_handshake()
            except BaseException as exc:  # noqa: BLE001 - the client's side reports it
                failed.append(exc)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        ours.settimeout(20)
        with client_ctx.wrap_socket(ours, server_hostname=HOST) as tls:
            cipher = tls.cipher()[0]
        thread.join(20)
        self.assertEqual(failed, [])
        return cipher

    def test_a_tls13_client_accepts_the_proxy_s_certificate(self) -> None:
        self.assertTrue(self.handshake(ssl.TLSVersion.TLSv1_3).startswith("TLS_"))

    def test_a_tls12_client_gets_an_ecdhe_ecdsa_suite(self) -> None:
        self.assertTrue(self.handshake(ssl.TLSVersion.TLSv1_2).startswith("ECDHE-ECDSA-"))


@requires(HAVE_MITMPROXY, "mitmproxy (dev extra)")
class FilesTest(unittest.TestCase):
    def test_modes_the_key_for_the_owner_alone_the_rest_readable(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            old = os.umask(0)
            try:
                confdir = _made(tmp)
            finally:
                os.umask(old)
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in confdir.iterdir()}
        self.assertEqual(modes, {KEY_AND_CERT: 0o600, CERT: 0o644,
                                 DHPARAM: 0o644})

    def test_a_key_file_left_readable_by_an_interrupted_start_is_remade_for_the_owner_alone(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            confdir = Path(tmp) / "mitmproxy"
            confdir.mkdir()
            stale = confdir / KEY_AND_CERT
            stale.write_bytes(b"half a key")
            stale.chmod(0o644)
            _made(tmp)
            self.assertEqual(stat.S_IMODE(stale.stat().st_mode), 0o600)
            self.assertIn(b"PRIVATE KEY", stale.read_bytes())

    def test_an_existing_ca_is_kept_and_missing_dh_parameters_are_added(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            confdir = _made(tmp)
            kept = {name: (confdir / name).read_bytes() for name in (KEY_AND_CERT, CERT)}
            (confdir / DHPARAM).unlink()
            _made(tmp)
            self.assertEqual({name: (confdir / name).read_bytes() for name in kept}, kept)
            self.assertIn(b"BEGIN DH PARAMETERS", (confdir / DHPARAM).read_bytes())

    def test_the_ca_child_never_imports_mitmproxy(self) -> None:
        # mitmproxy's certificate code is most of the CA child's time on the start's critical path.
        with tempfile.TemporaryDirectory() as tmp:
            probe = (
                "import sys; from pathlib import Path; from bot_bottle.sidecar import ca_maker; "
                "code = ca_maker.create_ca_files(Path(sys.argv[1])); "
                "print(code, sorted(m for m in sys.modules if m.split('.')[0] in ('mitmproxy', 'OpenSSL')))"
            )
            out = subprocess.run([sys.executable, "-c", probe, tmp], capture_output=True, text=True, timeout=120,
                                 env=dict(os.environ, PYTHONPATH=str(REPO)))
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stdout.strip(), "0 []")
            self.assertTrue((Path(tmp) / CERT).is_file())


if __name__ == "__main__":
    unittest.main()
