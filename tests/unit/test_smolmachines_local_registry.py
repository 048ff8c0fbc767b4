"""The throwaway registry and the tarball pusher, in-process on loopback (no Docker)."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import tarfile
import tempfile
import threading
import unittest
from pathlib import Path

from bot_bottle.backend.smolmachines import local_registry as lr


def docker_save_tar(path: Path) -> tuple[bytes, list[bytes]]:
    """A minimal ``docker save`` archive: manifest.json, one config, two uncompressed layers."""
    layers = []
    for name, text in (("etc/hello", b"hi\n"), ("etc/other", b"there\n")):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as layer:
            info = tarfile.TarInfo(name)
            info.size = len(text)
            layer.addfile(info, io.BytesIO(text))
        layers.append(buf.getvalue())
    diff_ids = ["sha256:" + hashlib.sha256(b).hexdigest() for b in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps([{"Config": "cfg.json", "RepoTags": ["tiny:1"], "Layers": ["l1/layer.tar", "l2/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in (("manifest.json", manifest), ("cfg.json", config), ("l1/layer.tar", layers[0]), ("l2/layer.tar", layers[1])):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return config, layers


class RegistryRoundTrip(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)
        self.server = lr.make_server(self.tmp / "registry")  # 127.0.0.1, any free port
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)
        self.port = int(self.server.server_address[1])
        self.endpoint = f"127.0.0.1:{self.port}"

    def get(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def test_push_then_pull_back_manifest_config_and_layers(self) -> None:
        archive = self.tmp / "image.tar"
        config, layers = docker_save_tar(archive)
        self.assertTrue(lr.wait_ready(self.endpoint, timeout=5))
        digest = lr.push_tarball(archive, f"{self.endpoint}/bot-bottle:0123456789abcdef")
        status, headers, body = self.get("GET", "/v2/bot-bottle/manifests/0123456789abcdef")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], lr.OCI_MANIFEST)
        self.assertEqual(headers["Docker-Content-Digest"], digest)
        self.assertEqual("sha256:" + hashlib.sha256(body).hexdigest(), digest)
        manifest = json.loads(body)
        self.assertEqual(manifest["config"]["digest"], "sha256:" + hashlib.sha256(config).hexdigest())
        self.assertEqual([l["digest"] for l in manifest["layers"]], ["sha256:" + hashlib.sha256(b).hexdigest() for b in layers])
        for layer, data in zip(manifest["layers"], layers):
            status, _, blob = self.get("GET", f"/v2/bot-bottle/blobs/{layer['digest']}")
            self.assertEqual((status, blob), (200, data))
        self.assertEqual(self.get("GET", f"/v2/bot-bottle/manifests/{digest}")[0], 200)
        # Pushing again uploads nothing new and yields the same manifest.
        self.assertEqual(lr.push_tarball(archive, f"{self.endpoint}/bot-bottle:again"), digest)

    def test_a_wrong_digest_is_refused(self) -> None:
        status, headers, _ = self.get("POST", "/v2/bot-bottle/blobs/uploads/")
        self.assertEqual(status, 202)
        wrong = "sha256:" + "0" * 64
        status, _, body = self.get("PUT", f"{headers['Location']}?digest={wrong}", b"data", {"Content-Length": "4"})
        self.assertEqual(status, 400)
        self.assertIn(b"DIGEST_INVALID", body)
        self.assertEqual(self.get("HEAD", f"/v2/bot-bottle/blobs/{wrong}")[0], 404)

    def test_chunked_patch_uploads_and_unknown_paths(self) -> None:
        _, headers, _ = self.get("POST", "/v2/x/blobs/uploads/")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.putrequest("PATCH", headers["Location"])
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for part in (b"hello ", b"world"):
            conn.send(b"%x\r\n%s\r\n" % (len(part), part))
        conn.send(b"0\r\n\r\n")
        self.assertEqual(conn.getresponse().status, 202)
        conn.close()
        digest = "sha256:" + hashlib.sha256(b"hello world").hexdigest()
        self.assertEqual(self.get("PUT", f"{headers['Location']}?digest={digest}", b"", {"Content-Length": "0"})[0], 201)
        self.assertEqual(self.get("GET", f"/v2/x/blobs/{digest}")[2], b"hello world")
        self.assertEqual(self.get("GET", "/v2/Bad_Name/manifests/x")[0], 404)
        self.assertEqual(self.get("GET", "/v2/x/manifests/missing")[0], 404)

    def test_not_a_docker_save_archive(self) -> None:
        bogus = self.tmp / "bogus.tar"
        with tarfile.open(bogus, "w"):
            pass
        with self.assertRaises(lr.PushError):
            lr.push_tarball(bogus, f"{self.endpoint}/bot-bottle:x")

    def test_image_refs(self) -> None:
        self.assertEqual(lr.ImageRef.parse("10.0.0.2:5000/bot-bottle:abc"), lr.ImageRef("10.0.0.2:5000", "bot-bottle", "abc"))
        with self.assertRaises(ValueError):
            lr.ImageRef.parse("no-tag")


if __name__ == "__main__":
    unittest.main()
