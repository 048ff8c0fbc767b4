"""Secrets cut over two values of a body too large to parse, and of a file found inside a body.

A body past ``structured_limit`` and every content found inside a body (an archive member, a
decompressed layer) are scanned as text; their values still meet their neighbours in the
adjacent-values check, read by a lexical pass (``dlp.json_strings``).
"""

from __future__ import annotations

import base64
import gzip
import io
import itertools
import json
import random
import sys
import tarfile
import zipfile
from pathlib import Path
from urllib.parse import urlencode

from bot_bottle.sidecar.dlp import bodies
from bot_bottle.sidecar.dlp.json_strings import lexed_form_values, lexed_json_values, value_chunks
from bot_bottle.sidecar.dlp.scanner import Scanner, ScanOptions

GITHUB = "ghp_R7bXk2Lw9qPz4Vn8Ty3Hs6Jd1Mf5Gc0Ab2Ew"
AWS = "AKIAQ7ZK3M5N2P4R6T8W"
ANTHROPIC = "sk-ant-api03-Zq8Xv2Lm4Np6Rt0Yw3Ks5Jh7Gf9Dd1Ss-Aa2Bb4Cc6"
SECRET = "s3cr3t-Val_ue-9x7Q2mZ8pL4"
JSON = [("content-type", "application/json")]
# The same code path as a 9 MiB body, at a size a unit test can afford.
SMALL_LIMIT = ScanOptions(structured_limit=64 * 1024)


def _scanner(options: ScanOptions | None = None) -> Scanner:
    return Scanner({"DEPLOY_KEY": SECRET}, options)


def _found(findings: list, detector: str) -> list:
    return [f for f in findings if f.detector == detector]


def _padding(count: int, rng: random.Random) -> list[dict]:
    """Package-lock-like records: ids, hex hashes and base64 integrity values side by side."""
    out = []
    for i in range(count):
        digest = rng.randbytes(32)
        out.append({"name": f"pkg-{i}", "version": f"{i % 9}.{i % 7}.{i % 5}",
                    "resolved": f"https://registry.example/pkg-{i}/-/pkg-{i}.tgz",
                    "integrity": "sha512-" + base64.b64encode(digest + digest).decode(),
                    "sha": digest.hex()[:40], "id": f"{rng.getrandbits(64):016x}"})
    return out


def _big_json(tail: dict, records: int) -> bytes:
    return json.dumps({"packages": _padding(records, random.Random(7)), "tail": tail}).encode()


def _tar_gz(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _zip_part(name: str, content: bytes) -> tuple[list[tuple[str, str]], bytes]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, content)
    body = (b'--XX\r\nContent-Disposition: form-data; name="f"; filename="a.zip"\r\n'
            b"Content-Type: application/zip\r\n\r\n" + buffer.getvalue() + b"\r\n--XX--\r\n")
    return [("content-type", "multipart/form-data; boundary=XX")], body


# -- bodies past the structured limit ----------------------------------------------------------


class TestPastTheStructuredLimit:
    def test_token_cut_over_two_values_of_a_nine_mib_json_body(self) -> None:
        body = _big_json({"a": GITHUB[:10], "b": GITHUB[10:]}, 31_000)
        assert len(body) > ScanOptions().structured_limit
        findings = _scanner().scan_request("POST", "https://api.example/", JSON, body)
        assert [f.encoding for f in _found(findings, "github-token")] == ["split"]

    def test_bottle_secret_cut_over_two_values(self) -> None:
        body = _big_json({"a": SECRET[:9], "b": SECRET[9:]}, 300)
        findings = _scanner(SMALL_LIMIT).scan_request("POST", "https://api.example/", JSON, body)
        assert _found(findings, "known-secret")

    def test_aws_key_id_and_anthropic_key_cut(self) -> None:
        for token, detector in ((AWS, "aws-access-key-id"), (ANTHROPIC, "anthropic-api-key")):
            body = _big_json({"x": [token[:6], token[6:]]}, 300)
            findings = _scanner(SMALL_LIMIT).scan_request("POST", "https://api.example/", JSON, body)
            assert _found(findings, detector), detector

    def test_token_cut_over_two_ndjson_records(self) -> None:
        lines = [json.dumps(record) for record in _padding(300, random.Random(3))]
        lines += [json.dumps({"part": GITHUB[:15]}), json.dumps({"part": GITHUB[15:]})]
        body = ("\n".join(lines) + "\n").encode()
        findings = _scanner(SMALL_LIMIT).scan_request(
            "POST", "https://api.example/", [("content-type", "application/x-ndjson")], body)
        assert _found(findings, "github-token")

    def test_token_cut_over_two_form_values(self) -> None:
        pairs = [(f"field{i}", f"{random.Random(i).getrandbits(128):032x}") for i in range(2000)]
        pairs += [("a", GITHUB[:12]), ("b", GITHUB[12:])]
        body = urlencode(pairs).encode()
        findings = _scanner(SMALL_LIMIT).scan_request(
            "POST", "https://api.example/", [("content-type", "application/x-www-form-urlencoded")], body)
        assert _found(findings, "github-token")

    def test_cut_with_escapes_in_the_pieces(self) -> None:
        body = _big_json({"a": "ghp\u005fR7bXk2", "b": "Lw9qPz4Vn8Ty3Hs6Jd1Mf5Gc0Ab2Ew"}, 300)
        body = body.replace(b"ghp_R7bXk2", b"ghp\\u005fR7bXk2")
        findings = _scanner(SMALL_LIMIT).scan_request("POST", "https://api.example/", JSON, body)
        assert _found(findings, "github-token")

    def test_cut_after_many_one_letter_values(self) -> None:
        # More values than are joined at a time: the cut lies past the first window.
        body = ("[" + '"a",' * 400_000 + json.dumps(GITHUB[:20]) + "," + json.dumps(GITHUB[20:]) + "]").encode()
        findings = _scanner(SMALL_LIMIT).scan_request("POST", "https://api.example/", JSON, body)
        assert _found(findings, "github-token")

    def test_redaction_of_such_a_body_blocks(self) -> None:
        body = _big_json({"a": GITHUB[:10], "b": GITHUB[10:]}, 300)
        result = _scanner(SMALL_LIMIT).redact_request("POST", "https://api.example/", JSON, body)
        assert _found(list(result.unredacted), "github-token")


# -- contents found inside a body --------------------------------------------------------------


class TestInsideABody:
    def test_json_file_in_a_gzipped_tar(self) -> None:
        inner = json.dumps({"a": GITHUB[:10], "b": GITHUB[10:]}).encode()
        findings = _scanner().scan_request("POST", "https://api.example/", [("content-type", "application/gzip")],
                                           _tar_gz("config.json", inner))
        assert _found(findings, "github-token")

    def test_json_file_in_a_zip_file_part(self) -> None:
        inner = json.dumps([{"k": AWS[:8]}, {"k": AWS[8:]}]).encode()
        headers, body = _zip_part("data.json", inner)
        findings = _scanner().scan_request("POST", "https://api.example/", headers, body)
        assert _found(findings, "aws-access-key-id")

    def test_bottle_secret_cut_in_ndjson_inside_gzip_tar(self) -> None:
        inner = (json.dumps({"v": SECRET[:12]}) + "\n" + json.dumps({"v": SECRET[12:]}) + "\n").encode()
        findings = _scanner().scan_request("POST", "https://api.example/", [("content-type", "application/gzip")],
                                           _tar_gz("log.ndjson", inner))
        assert _found(findings, "known-secret")


# -- the lexical readers -----------------------------------------------------------------------


def _real_json_files(count: int) -> list[Path]:
    """JSON files of this machine: the interpreter's packages, then shared data."""
    found: list[Path] = []
    for root in (Path(sys.base_prefix), Path(sys.prefix), Path("/usr/share")):
        found += itertools.islice(root.rglob("*.json"), count)
    return found


def _lexed(text: str, window: int = 1 << 20) -> list[str]:
    return [value for batch in lexed_json_values(text, window) for value in batch]


class TestLexedValues:
    def test_keys_are_left_out_and_escapes_decoded(self) -> None:
        text = '{"key": "va\\"lue", "n": 12, "list": ["x\\u0041", {"k2" :"y"}], "e": ""}'
        assert _lexed(text) == ['va"lue', "xA", "y"]

    def test_same_values_as_a_parse_of_real_json_files(self) -> None:
        files = _real_json_files(80)
        checked = 0
        for path in files:
            try:
                text = path.read_text("utf-8")
                doc = json.loads(text)
            except (OSError, ValueError):
                continue
            expected = [v for v in bodies.json_values(doc)[0] if v and not v.isdigit()]
            for window in (64, 1 << 20):
                assert [v for v in _lexed(text, window) if not v.isdigit()] == expected, path
            checked += 1
        assert checked >= 5

    def test_a_string_longer_than_the_window(self) -> None:
        long = "Q" * 5000
        text = json.dumps({"a": "x", "b": long, "c": ["y", "z\\"]})
        assert _lexed(text, window=100) == ["x", long, "y", "z\\"]

    def test_escaped_quotes_at_a_window_edge(self) -> None:
        values = ['a\\"b' * 30, "plain", '\\\\', '"' * 50]
        text = json.dumps(values)
        for window in (1, 7, 64, 1000):
            assert _lexed(text, window) == values

    def test_unterminated_string_ends_the_reading(self) -> None:
        assert _lexed('["one", "two", "thr' + "e" * 10_000) == ["one", "two"]
        assert _lexed('["a", "' + '\\"' * 10_000) == ["a"]

    def test_malformed_escape_given_as_written(self) -> None:
        assert _lexed('["a\\qb", "c"]') == ["a\\qb", "c"]

    def test_deep_nesting_and_no_strings(self) -> None:
        assert _lexed("[" * 200_000 + '"v"' + "]" * 200_000) == ["v"]
        assert _lexed("[" + "1," * 100_000 + "2]") == []

    def test_form_values(self) -> None:
        assert list(lexed_form_values("a=1&b=x%41+y&flag&=z&c=")) == ["1", "xA y", "z", ""]


class TestValueChunks:
    def test_every_short_stretch_across_a_cut_lies_in_some_chunk(self) -> None:
        rng = random.Random(11)
        values = ["".join(rng.choice("abcdef") for _ in range(rng.randint(0, 30))) for _ in range(30_000)]
        joined = "".join(values)
        reach = 40
        chunks = list(value_chunks(values, 300, reach=reach))
        assert len(chunks) > 5
        for text, cuts in chunks:
            assert all(0 < cut < len(text) for cut in cuts)
        position = 0
        for value in values[:-1]:
            position += len(value)
            if not value:
                continue
            stretch = joined[max(0, position - reach // 2): position + reach // 2]
            assert any(stretch in text for text, _ in chunks)


# -- look-alikes -------------------------------------------------------------------------------


class TestBenign:
    def test_package_lock_like_body_past_the_limit_is_clean(self) -> None:
        body = _big_json({"a": "done"}, 31_000)
        assert len(body) > ScanOptions().structured_limit
        assert _scanner().scan_request("POST", "https://api.example/", JSON, body) == []

    def test_api_dump_like_ndjson_past_the_limit_is_clean(self) -> None:
        rng = random.Random(5)
        lines = [json.dumps({"id": f"evt_{rng.getrandbits(96):024x}", "user": f"usr_{rng.getrandbits(40):010x}",
                             "etag": rng.randbytes(16).hex(), "cursor": base64.b64encode(
                                 rng.randbytes(24)).decode(), "ts": 1700000000 + i}) for i in range(2000)]
        body = ("\n".join(lines) + "\n").encode()
        findings = _scanner(SMALL_LIMIT).scan_request(
            "POST", "https://api.example/", [("content-type", "application/x-ndjson")], body)
        assert findings == []

    def test_real_json_files_inside_a_gzipped_tar_are_clean(self) -> None:
        buffer = io.BytesIO()
        added = 0
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for path in _real_json_files(60):
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                if not bodies.looks_like_json(data) or len(data) > 2 * 1024 * 1024:
                    continue
                info = tarfile.TarInfo(f"f{added}.json")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
                added += 1
        assert added >= 3
        findings = _scanner().scan_request("POST", "https://api.example/", [("content-type", "application/gzip")],
                                           buffer.getvalue())
        assert findings == []

    def test_small_json_body_unchanged(self) -> None:
        body = json.dumps({"a": GITHUB[:10], "b": GITHUB[10:]}).encode()
        findings = _scanner().scan_request("POST", "https://api.example/", JSON, body)
        assert [f.location for f in findings] == ["body.json:$.a+body.json:$.b"]
        gzipped = gzip.compress(body)
        findings = _scanner().scan_request("POST", "https://api.example/", JSON + [("content-encoding", "gzip")],
                                           gzipped)
        assert [f.location for f in findings] == ["body.json:$.a+body.json:$.b"]


class TestMalformedJson:
    def test_token_cut_over_two_values_of_json_cut_short(self) -> None:
        body = ('{"a": "' + GITHUB[:10] + '", "b": "' + GITHUB[10:] + '", "c": [1, 2').encode()
        findings = _scanner().scan_request("POST", "https://api.example/", JSON, body)
        assert _found(findings, "github-token")

    def test_json_with_a_trailing_comma_and_neighbouring_hashes_is_clean(self) -> None:
        rng = random.Random(9)
        values = ", ".join(f'"{rng.randbytes(20).hex()}", "{base64.b64encode(rng.randbytes(30)).decode()}"'
                           for _ in range(200))
        body = ("[" + values + ",]").encode()
        assert _scanner().scan_request("POST", "https://api.example/", JSON, body) == []
