"""The adjacent-fields check where a body has more values than are taken apart one by one, NDJSON
under types the JSON check did not know, and pairs cut by ";" inside a multipart field.

A token cut over two neighbouring values must be found however many values pad the body (past
the engine's field cap, past ``MAX_FIELDS``), in NDJSON whatever its Content-Type (or a BOM or
blanks before it), and in a multipart text field holding ``a=half;b=half``. Real big JSON (the
installed packages' metadata with their file hashes, the standard library's documentation),
NDJSON logs of hashes and ids, and multipart fields holding CSS or SQL stay clean."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import random
import string
import sys
import time
import unittest
from typing import Any

from bot_bottle.sidecar.dlp import Finding, Scanner, bodies
from bot_bottle.sidecar.dlp.scanner import MAX_FIELDS

GITHUB = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
SECRET = "Zq7tKp2WvX9mRb4LcN8yHd3FsG6jT1uE"
URL = "https://api.example.com/v1/items"
JSON = ("Content-Type", "application/json")
NDJSON = ("Content-Type", "application/x-ndjson")

Request = tuple[str, str, list[tuple[str, str]], bytes | None]


def halves(token: str) -> tuple[str, str]:
    return token[: len(token) // 2], token[len(token) // 2 :]


def padding(count: int) -> list[str]:
    return [f"item-{i}" for i in range(count)]


def split_findings(found: list[Finding]) -> set[tuple[str, str | None]]:
    return {(f.detector, f.secret_name) for f in found if f.encoding and f.encoding.startswith("split")}


def package_records() -> list[dict[str, Any]]:
    """The installed distributions' metadata and files with their sha256 (urlsafe base64): a
    package index's shape, values that look random next to each other by the thousand."""
    out: list[dict[str, Any]] = []
    for dist in importlib.metadata.distributions():
        files = [{"path": str(f), "hash": f.hash.value if f.hash else None, "size": f.size} for f in dist.files or []]
        out.append({"name": dist.metadata["Name"], "version": dist.version, "summary": dist.metadata.get("Summary"),
                    "requires": dist.requires or [], "files": files})
    return out


def stdlib_documents() -> dict[str, object]:
    """The loaded standard-library modules' names, documentation and public attributes."""
    out: dict[str, object] = {}
    for name in sorted(sys.stdlib_module_names):
        module = sys.modules.get(name)
        if module is None:
            continue
        names = {attr: str(getattr(getattr(module, attr, None), "__doc__", "") or "")[:2000]
                 for attr in dir(module) if not attr.startswith("_")}
        out[name] = {"doc": module.__doc__ or "", "names": names}
    return out


class ManyValuesThenACut(unittest.TestCase):
    scanner = Scanner({"HOST_SECRET": SECRET})

    def detectors(self, request: Request) -> set[str]:
        return {f.detector for f in self.scanner.scan_request(*request)}

    def test_json_list_past_the_engine_cap(self) -> None:
        first, second = halves(GITHUB)
        body = json.dumps(padding(6000) + [first, second]).encode()
        self.assertIn("github-token", self.detectors(("POST", URL, [JSON], body)))

    def test_json_list_past_max_fields(self) -> None:
        first, second = halves(GITHUB)
        for count in (MAX_FIELDS + 1, 3 * MAX_FIELDS):
            with self.subTest(count=count):
                body = json.dumps(padding(count) + [first, second]).encode()
                self.assertIn("github-token", self.detectors(("POST", URL, [JSON], body)))

    def test_cut_in_the_middle_of_the_padding(self) -> None:
        first, second = halves(GITHUB)
        values = padding(2 * MAX_FIELDS)
        values[MAX_FIELDS : MAX_FIELDS] = [first, second]
        body = json.dumps({"rows": [{"id": i, "v": v} for i, v in enumerate(values)]}).encode()
        self.assertIn("github-token", self.detectors(("POST", URL, [JSON], body)))

    def test_ndjson_past_max_fields(self) -> None:
        first, second = halves(GITHUB)
        lines = [json.dumps({"v": v}) for v in padding(MAX_FIELDS + 1) + [first, second]]
        body = "\n".join(lines).encode()
        self.assertIn("github-token", self.detectors(("POST", URL, [NDJSON], body)))

    def test_repeated_key_past_max_fields(self) -> None:
        first, second = halves(GITHUB)
        pairs = ",".join(f'"k":"{v}"' for v in padding(MAX_FIELDS + 1) + [first, second])
        body = ("{" + pairs + "}").encode()
        self.assertIn("github-token", self.detectors(("POST", URL, [JSON], body)))

    def test_bottle_secret_cut_past_the_engine_cap(self) -> None:
        body = json.dumps(padding(6000) + [SECRET[:16], SECRET[16:]]).encode()
        found = self.scanner.scan_request("POST", URL, [JSON], body)
        self.assertIn(("known-secret", "HOST_SECRET"), split_findings(found))

    def test_bottle_secret_cut_over_ndjson_lines_past_max_fields(self) -> None:
        lines = [json.dumps({"v": v}) for v in padding(MAX_FIELDS + 1) + [SECRET[:16], SECRET[16:]]]
        found = self.scanner.scan_request("POST", URL, [NDJSON], "\n".join(lines).encode())
        self.assertIn(("known-secret", "HOST_SECRET"), split_findings(found))

    def test_padding_past_a_mebibyte_with_memory(self) -> None:
        # The search for pieces sent across requests stops after 1 MiB of a request's text; the
        # adjacent-fields check of the request itself does not share that budget.
        first, second = halves(GITHUB)
        body = json.dumps(["p%05d" % i + "y" * 120 for i in range(9000)] + [first, second]).encode()
        self.assertGreater(len(body), 1024 * 1024)
        found = self.scanner.scan_request("POST", URL, [JSON], body, memory=self.scanner.new_memory())
        self.assertIn("github-token", {f.detector for f in found})

    def test_a_redact_route_blocks_past_max_fields(self) -> None:
        # The joined values cannot be rewritten one by one: the request is refused.
        first, second = halves(GITHUB)
        body = json.dumps(padding(MAX_FIELDS + 1) + [first, second]).encode()
        redacted = self.scanner.redact_request("POST", URL, [JSON], body)
        self.assertIn("github-token", {f.detector for f in redacted.unredacted})

    def test_fields_past_the_engine_cap_are_redacted(self) -> None:
        first, second = halves(GITHUB)
        body = json.dumps(padding(6000) + [first, second]).encode()
        redacted = self.scanner.redact_request("POST", URL, [JSON], body)
        self.assertIn("github-token", {f.detector for f in redacted.findings})
        self.assertEqual(redacted.unredacted, ())
        self.assertNotIn(first, (redacted.body or b"").decode())
        self.assertNotIn(second, (redacted.body or b"").decode())


class BigRealJsonStaysClean(unittest.TestCase):
    scanner = Scanner({"HOST_SECRET": SECRET})

    def test_package_metadata_with_hashes(self) -> None:
        records = package_records()
        self.assertGreater(bodies.json_values(records)[1], MAX_FIELDS)  # the joined check's size
        body = json.dumps(records).encode()
        found = self.scanner.scan_request("POST", URL, [JSON], body, memory=self.scanner.new_memory())
        self.assertEqual(split_findings(found), set())
        self.assertEqual([f for f in found if f.detector != "high-entropy"], [])
        lines = "\n".join(json.dumps({"level": "info", "pkg": r["name"], **f}) for r in records for f in r["files"])
        for kind in ("application/x-ndjson", "text/plain", "application/ndjson"):
            with self.subTest(kind=kind):
                found = self.scanner.scan_request("POST", URL, [("Content-Type", kind)], lines.encode())
                self.assertEqual(split_findings(found), set())

    def test_stdlib_documentation(self) -> None:
        documents = stdlib_documents()
        self.assertGreater(bodies.json_values(documents)[1], MAX_FIELDS)
        body = json.dumps(documents, indent=1).encode()
        found = self.scanner.scan_request("POST", URL, [JSON], body)
        self.assertEqual(split_findings(found), set())

    def test_many_ids_and_hashes_past_max_fields(self) -> None:
        rng = random.Random(14)
        rows = [{"id": f"{rng.getrandbits(128):032x}", "sha": hashlib.sha256(str(i).encode()).hexdigest(),
                 "etag": "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(20)),
                 "tag": f"v{i}"} for i in range(4000)]
        body = json.dumps(rows).encode()
        self.assertEqual(split_findings(self.scanner.scan_request("POST", URL, [JSON], body)), set())


class NdjsonUnderOtherTypes(unittest.TestCase):
    scanner = Scanner({"HOST_SECRET": SECRET})

    def body(self) -> bytes:
        first, second = halves(GITHUB)
        return f'{{"a":"{first}"}}\n{{"b":"{second}"}}\n'.encode()

    def test_types_the_json_check_did_not_know(self) -> None:
        for kind in ("application/ndjson", "text/x-ndjson", "application/x-ldjson", "application/x-amz-json-1.1",
                     "text/x-log"):
            with self.subTest(kind=kind):
                found = self.scanner.scan_request("POST", URL, [("Content-Type", kind)], self.body())
                self.assertIn("github-token", {f.detector for f in found})

    def test_byte_order_mark_and_leading_blanks(self) -> None:
        for lead in (b"\xef\xbb\xbf", b" " * 70, b"\n" * 100, b"\xef\xbb\xbf\r\n"):
            with self.subTest(lead=lead[:4]):
                found = self.scanner.scan_request("POST", URL, [("Content-Type", "text/plain")], lead + self.body())
                self.assertIn("github-token", {f.detector for f in found})

    def test_a_redact_route_blocks(self) -> None:
        redacted = self.scanner.redact_request("POST", URL, [("Content-Type", "text/x-ndjson")], self.body())
        self.assertIn("github-token", {f.detector for f in redacted.unredacted})

    def test_logs_of_hashes_and_ids_stay_clean(self) -> None:
        rng = random.Random(3)
        lines = [json.dumps({"ts": 1700000000 + i, "trace": f"{rng.getrandbits(64):016x}",
                             "sha": hashlib.sha1(str(i).encode()).hexdigest(), "msg": "GET /v1/items 200"})
                 for i in range(500)]
        body = "\n".join(lines).encode()
        for kind in ("application/ndjson", "text/x-ndjson", "text/x-log", "text/plain"):
            with self.subTest(kind=kind):
                self.assertEqual(self.scanner.scan_request("POST", URL, [("Content-Type", kind)], body), [])
                self.assertEqual(self.scanner.scan_request("POST", URL, [("Content-Type", kind)],
                                                           b"\xef\xbb\xbf" + body), [])

    def test_text_that_starts_like_json_but_is_not(self) -> None:
        for text in (b"[INFO] started\n[INFO] ready\n", b"{{ template }} and more", b"[1, 2, 3" + b"4" * 5000):
            with self.subTest(text=text[:12]):
                self.assertEqual(self.scanner.scan_request("POST", URL, [("Content-Type", "text/x-log")], text), [])


class MultipartFieldWithSemicolons(unittest.TestCase):
    scanner = Scanner({"HOST_SECRET": SECRET})

    @staticmethod
    def multipart(*contents: bytes) -> Request:
        body = b"".join(b'--XX\r\nContent-Disposition: form-data; name="f%d"\r\n\r\n' % i + c + b"\r\n"
                        for i, c in enumerate(contents)) + b"--XX--\r\n"
        return ("POST", URL, [("Content-Type", "multipart/form-data; boundary=XX")], body)

    def test_pairs_in_one_field(self) -> None:
        first, second = halves(GITHUB)
        for content in (f"a={first};b={second}", f"x=1&a={first};b={second}&y=2"):
            with self.subTest(content=content):
                found = self.scanner.scan_request(*self.multipart(b"hello", content.encode()))
                self.assertIn("github-token", {f.detector for f in found})

    def test_bottle_secret_in_pairs(self) -> None:
        found = self.scanner.scan_request(*self.multipart(f"a={SECRET[:16]};b={SECRET[16:]}".encode()))
        self.assertIn(("known-secret", "HOST_SECRET"), split_findings(found))

    def test_css_sql_and_cookies_stay_clean(self) -> None:
        rng = random.Random(11)
        for _ in range(100):
            a = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(20))
            b = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(20))
            request = self.multipart(
                f"body{{color:red;margin=0;background:url(/i.png?v={a})}}".encode(),
                f"UPDATE t SET token_id='{a}'; UPDATE t SET etag='{b}' WHERE id=1;".encode(),
                f"sid={a}; Path=/; HttpOnly; csrf={b}".encode(),
                f"a={a};b={b}".encode(),
            )
            self.assertEqual(self.scanner.scan_request(*request), [])


class CostStaysLinear(unittest.TestCase):
    scanner = Scanner({"HOST_SECRET": SECRET})

    @staticmethod
    def body(count: int) -> bytes:
        return "\n".join(json.dumps({"v": f"value {i}", "n": i}) for i in range(count)).encode()

    def test_four_times_the_values_costs_well_under_sixteen_times(self) -> None:
        # Interleaved, best of five: the machine's other load falls on both alike. A cost growing
        # with the square of the values would take sixteen times as long.
        small, large = self.body(2 * MAX_FIELDS), self.body(8 * MAX_FIELDS)
        best = {len(small): float("inf"), len(large): float("inf")}
        for _ in range(5):
            for body in (small, large):
                start = time.perf_counter()
                self.scanner.scan_request("POST", URL, [NDJSON], body)
                best[len(body)] = min(best[len(body)], time.perf_counter() - start)
        self.assertLess(best[len(large)], 10 * best[len(small)])


if __name__ == "__main__":
    unittest.main()
