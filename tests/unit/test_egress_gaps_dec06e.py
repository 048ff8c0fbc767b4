"""Git pushes over WebDAV ("dumb HTTP", ``git http-push``) are refused like smart-HTTP pushes:
they never name git-receive-pack, yet write a repository on a route allowing PUT."""

from __future__ import annotations

import asyncio
import unittest
from types import SimpleNamespace
from unittest import mock

import tests.unit.test_sidecar_addon as addon_tests
from bot_bottle.sidecar.egress import structure as s
from bot_bottle.sidecar.egress.core import RequestFacts, decide
from bot_bottle.sidecar.egress.policy import Policy

OID = "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"
PACK = "pack-" + "0123456789abcdef0123456789abcdef01234567"
P = Policy.from_dict({"version": 1, "routes": [{"host": "dav.example"}]})


def req(method: str, path: str, headers: dict[str, str] | None = None) -> RequestFacts:
    return RequestFacts.make(scheme="https", host="dav.example", port=443, method=method, path=path,
                             headers=list((headers or {}).items()))


class DumbPushRefusedTest(unittest.TestCase):
    def assert_push(self, method: str, path: str, headers: dict[str, str] | None = None) -> None:
        v = decide(req(method, path, headers), P)
        self.assertFalse(v.allowed, (method, path))
        self.assertEqual(v.rule, s.RULE_GIT_PUSH)
        self.assertIn("git-gate", v.reason)

    def test_http_push_writes_of_loose_objects(self) -> None:
        loose = f"/repo.git/objects/{OID[:2]}/{OID[2:]}"
        self.assert_push("PUT", loose)
        # http-push PUTs under the name with its lock token appended, then MOVEs it.
        self.assert_push("PUT", loose + "opaquelocktoken:e71d4fae-5dec-22d6-fea5-00a0c91e6be4")
        self.assert_push("MOVE", loose + "opaquelocktoken:1", {"Destination": "https://dav.example" + loose})
        self.assert_push("PUT", f"/objects/{OID[:2]}/{OID[2:]}")  # a repository served at the root
        self.assert_push("PUT", f"/r.git/objects/{OID[:2]}/{OID[2:]}{'ab' * 12}")  # SHA-256 names

    def test_packs_refs_and_info_refs(self) -> None:
        for method, path in (
            ("PUT", f"/repo.git/objects/pack/{PACK}.pack"),
            ("PUT", f"/repo.git/objects/pack/{PACK}.idx"),
            ("PUT", "/repo.git/objects/info/packs"),
            ("LOCK", "/repo.git/info/refs"),
            ("PUT", "/repo.git/info/refs"),
            ("LOCK", "/repo.git/refs/heads/main"),
            ("PUT", "/repo.git/refs/heads/feature/x"),
            ("PUT", "/repo.git/refs/tags/v1.0"),
            ("DELETE", "/repo.git/refs/heads/old"),
            ("PROPPATCH", "/repo.git/refs/heads/main"),
            ("MKCOL", f"/repo.git/objects/{OID[:2]}/{OID[2:]}"),
        ):
            with self.subTest(method=method, path=path):
                self.assert_push(method, path)

    def test_spellings_servers_decode(self) -> None:
        for path in (
            f"/repo.git/objects%2F{OID[:2]}%2F{OID[2:]}",
            f"/repo.git/objects%252F{OID[:2]}%252F{OID[2:]}",
            f"/repo.git\\objects\\{OID[:2]}\\{OID[2:]}",
            f"/repo.git/OBJECTS/{OID[:2].upper()}/{OID[2:].upper()}",
            "/repo.git/info/refs.",
            "/repo.git/info/refs;x=1",
            "/repo.git/info/refs?x=1",
            "/repo.git/refs%2Fheads%2Fmain",
            "/repo.git/refs%EF%BC%8Fheads%EF%BC%8Fmain",  # fullwidth solidus, read as "/" on Windows
        ):
            with self.subTest(path=path):
                self.assert_push("PUT", path)

    def test_overrides_and_destinations(self) -> None:
        loose = f"/repo.git/objects/{OID[:2]}/{OID[2:]}"
        self.assert_push("POST", loose, {"X-HTTP-Method-Override": "PUT"})
        self.assert_push("POST", loose + "?_method=PUT")
        self.assert_push("PUT", "/upload/blob", {"X-Original-URL": loose})
        # Written under a harmless name, then moved or copied into the repository.
        self.assert_push("MOVE", "/upload/tmp1", {"Destination": f"https://dav.example{loose}"})
        self.assert_push("COPY", "/upload/tmp1", {"Destination": "https://dav.example/repo.git/refs/heads/main"})
        self.assert_push("MOVE", "/upload/tmp1", {"Destination": "https://dav.example/repo.git/info/refs?x"})

    def test_the_git_gate_service_is_not_refused(self) -> None:
        gate = Policy.from_dict({"version": 2, "routes": [], "internal_services": {"git-gate": 9418}})
        facts = RequestFacts.make(scheme="http", host="git-gate.bottle.internal", port=80, method="PUT",
                                  path="/repo.git/refs/heads/main")
        self.assertTrue(decide(facts, gate).allowed)


class DumbPushLookAlikesPassTest(unittest.TestCase):
    def assert_passes(self, method: str, path: str, headers: dict[str, str] | None = None) -> None:
        v = decide(req(method, path, headers), P)
        self.assertTrue(v.allowed, (method, path, v.reason))

    def test_reads_of_a_dumb_http_fetch(self) -> None:
        for method, path in (
            ("GET", "/repo.git/info/refs"),
            ("HEAD", "/repo.git/info/refs"),
            ("GET", f"/repo.git/objects/{OID[:2]}/{OID[2:]}"),
            ("GET", f"/repo.git/objects/pack/{PACK}.pack"),
            ("GET", "/repo.git/objects/info/packs"),
            ("PROPFIND", "/repo.git/refs/heads/"),
            ("OPTIONS", "/repo.git/info/refs"),
            ("UNLOCK", "/repo.git/info/refs"),  # only releases a lock
        ):
            with self.subTest(method=method, path=path):
                self.assert_passes(method, path)

    def test_uploads_named_like_hashes(self) -> None:
        for method, path in (
            ("PUT", f"/bucket/{OID[:2]}/{OID[2:]}"),            # content-addressed store, no objects/
            ("PUT", f"/bucket/objects/{OID}"),                   # no two-hex directory
            ("PUT", f"/bucket/objects/{OID[:2]}/{OID[2:12]}"),   # too short for an object name
            ("PUT", f"/cache/objects/{OID[:3]}/{OID[3:]}"),
            ("PUT", f"/cache/objects/{OID[:2]}/{OID}"),  # a whole hash under its prefix
            ("PUT", f"/repo/objects/{OID[:2]}/{OID[2:]}{'ab' * 12}.filez"),  # an OSTree repository
            ("PUT", f"/repo/objects/{OID[:2]}/{OID[2:]}{'ab' * 12}.commit"),
            ("PUT", f"/dvc/files/md5/{OID[:2]}/{OID[2:32]}"),  # a DVC remote
            ("PUT", f"/lfs/objects/{OID[:2]}/{OID[2:4]}/{OID}{'0' * 24}"),  # git-lfs's own store
            ("PUT", "/api/v1/objects/my-report/v2"),
            ("PUT", "/api/v1/objects/ab/cd"),
            ("PUT", f"/v2/app/blobs/uploads/5f1c?digest=sha256:{OID}{'0' * 24}"),
            ("PUT", "/@scope%2fpkg"),
            ("POST", "/legacy/"),
            ("PUT", f"/bucket/objects/pack/pack-{OID[:20]}.pack"),
            ("PUT", "/bucket/objects/pack/pack-latest.idx"),
            ("PUT", "/docs/refs/headsup.md"),
            ("PUT", "/wiki/info/refs-and-links"),
            ("PUT", "/user/info/references"),
            ("MKCOL", f"/files/objects/{OID[:2]}/"),
            ("DELETE", "/repos/octo/app/git/refs/heads/merged-branch"),  # GitHub's REST API
            ("DELETE", "/api/v3/repos/octo/app/git/refs/heads/merged-branch"),
            ("PATCH", "/repos/octo/app/git/refs/heads/main"),
            ("POST", f"/repo.git/objects/{OID[:2]}/{OID[2:]}"),  # no write method asked
        ):
            with self.subTest(method=method, path=path):
                self.assert_passes(method, path)

    def test_query_and_destination_without_a_move(self) -> None:
        self.assert_passes("PUT", f"/upload?name=objects/{OID[:2]}/{OID[2:]}")
        self.assert_passes("PUT", "/upload/x", {"Destination": "https://dav.example/repo.git/refs/heads/main"})
        self.assert_passes("MOVE", "/upload/a", {"Destination": "https://dav.example/upload/b"})

    def test_pure_rule_needs_a_write_method(self) -> None:
        path = f"/repo.git/objects/{OID[:2]}/{OID[2:]}"
        self.assertIsNone(s.git_dumb_push_problem(path, ["GET", "HEAD", "PROPFIND"]))
        self.assertEqual(s.git_dumb_push_problem(path, ["put"]).rule, s.RULE_GIT_PUSH)


class InvalidUpstreamNameTest(addon_tests.AddonCase):
    """An upstream whose name does not normalise is refused at connect time too (``decide``
    refuses such targets first; this holds should one reach the connection anyway)."""

    def connect(self, host: str, resolved: tuple[str, ...] = ()) -> tuple[str | None, list[str]]:
        """The connection's error, and the names looked up on the way."""
        data = SimpleNamespace(server=SimpleNamespace(address=(host, 443), error=None))
        looked_up: list[str] = []

        async def getaddrinfo(_loop, name, port, **_kwargs):
            looked_up.append(name)
            return [(2, 1, 6, "", (ip, port)) for ip in resolved]

        with addon_tests.addon_context(self.addon) as tctx:
            tctx.configure(self.addon, **self.options())
            with mock.patch.object(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo):
                asyncio.run(self.addon.server_connect(data))
        return data.server.error, looked_up

    def test_an_invalid_name_is_not_connected_to(self) -> None:
        for host in ("bad host.example", "a..example", "x" * 300):
            with self.subTest(host=host[:20]):
                error, looked_up = self.connect(host, ("93.184.216.34",))
                self.assertIsNotNone(error)
                self.assertIn("invalid-host", error)
                self.assertNotIn(host, error)
                self.assertEqual(looked_up, [])

    def test_valid_names_still_connect(self) -> None:
        self.assertEqual(self.connect("fine.example", ("93.184.216.34",)), (None, ["fine.example"]))


if __name__ == "__main__":
    unittest.main()
