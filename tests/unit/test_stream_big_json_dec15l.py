"""Streamed uploads past ``structured_limit``: a token or the bottle's secret cut over two JSON,
NDJSON or form values is found as the batches pass, wherever the batch seams fall."""

from __future__ import annotations

import base64
import json
import random
import unittest
from urllib.parse import quote

from bot_bottle.sidecar.dlp import json_strings
from bot_bottle.sidecar.dlp.json_strings import lexed_form_values, lexed_json_values
from bot_bottle.sidecar.egress.dlp_adapter import DlpOutbound
from bot_bottle.sidecar.dlp.stream import DEFAULT_BATCH, StreamScan
from tests.unit.test_egress_dlp_adapter import OWN, POLICY, request

GITHUB = "ghp_R7bXk2Lw9qPz4Vn8Ty3Hs6Jd1Mf5Gc0Ab2Ew"
AWS = "AKIAQ7ZK3XW5RT2MVB4N"
DEPLOY = "s3cr3t-Val_ue-9x7Q2mZ8pL4"
MIB = 1024 * 1024
JSON_TYPE = [("content-type", "application/json")]
FORM_TYPE = [("content-type", "application/x-www-form-urlencoded")]


def _adapter() -> DlpOutbound:
    return DlpOutbound(POLICY, {"ANTHROPIC": OWN}, {"DEPLOY_KEY": DEPLOY})


def _stream(headers: list[tuple[str, str]], length: int | None) -> StreamScan:
    hdrs = headers + ([("transfer-encoding", "chunked")] if length is None else [])
    stream = _adapter().stream_scan(request(b"", headers=hdrs), length)
    assert stream is not None
    return stream


def _send(stream: StreamScan, body: bytes, first: int, piece: int = 64 * 1024) -> bytes:
    """Feed ``body``: its first ``first`` bytes at once (a batch seam there), then by ``piece``."""
    out = [stream.feed(body[:first])]
    for at in range(first, len(body), piece):
        if stream.blocked:
            break
        out.append(stream.feed(body[at : at + piece]))
    if not stream.blocked:
        out.append(stream.finish())
    return b"".join(out)


def _records(count: int, seed: int = 7) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [{"name": f"pkg-{i}", "version": f"{i % 9}.{i % 13}.{i % 7}",
             "resolved": f"https://registry.example/pkg-{i}.tgz",
             "sha": rng.randbytes(20).hex(), "integrity": "sha512-" + base64.b64encode(rng.randbytes(48)).decode()}
            for i in range(count)]


def _json_body(size: int, tail: str) -> bytes:
    """A package-lock-like JSON document of about ``size`` bytes, ``tail`` (JSON text of members)
    at its end."""
    recs = _records(size // 240)
    head = json.dumps({"packages": recs})[:-1]
    return (head + ", " + tail + "}").encode()


def _cut_pair(value: str, at: int) -> str:
    return f'"a": {json.dumps(value[:at])}, "b": {json.dumps(value[at:])}'


class StreamedJsonValues(unittest.TestCase):
    def _blocked(self, body: bytes, headers: list[tuple[str, str]], length: int | None, first: int,
                 second_piece: bytes) -> None:
        stream = _stream(headers, length)
        self.assertFalse(stream.whole and length is not None)
        sent = _send(stream, body, first)
        self.assertTrue(stream.blocked, "a value cut over two values passed")
        self.assertNotIn(second_piece, sent)  # the batch holding the last piece never left

    def test_token_cut_over_two_values_content_length(self) -> None:
        body = _json_body(9 * MIB, _cut_pair(GITHUB, 10))
        self.assertGreater(len(body), 8 * MIB)
        self._blocked(body, JSON_TYPE, len(body), DEFAULT_BATCH, GITHUB[10:].encode())

    def test_token_cut_over_two_values_chunked(self) -> None:
        body = _json_body(9 * MIB, _cut_pair(GITHUB, 14))
        self._blocked(body, JSON_TYPE, None, DEFAULT_BATCH, GITHUB[14:].encode())

    def test_sniffed_json_without_content_type(self) -> None:
        body = _json_body(9 * MIB, _cut_pair(GITHUB, 9))
        self._blocked(body, [("content-type", "application/octet-stream")], len(body), DEFAULT_BATCH,
                      GITHUB[9:].encode())

    def test_seam_between_the_two_values(self) -> None:
        body = _json_body(9 * MIB, _cut_pair(AWS, 8))
        seam = body.index(b'"b": ')  # the first value ends in one batch, the second is in the next
        self._blocked(body, JSON_TYPE, len(body), seam, AWS[8:].encode())

    def test_seam_inside_the_second_value(self) -> None:
        body = _json_body(9 * MIB, _cut_pair(GITHUB, 12))
        seam = body.index(GITHUB[12:].encode()) + 5
        self._blocked(body, JSON_TYPE, len(body), seam, GITHUB[12:].encode())

    def test_seam_inside_the_key_between(self) -> None:
        body = _json_body(9 * MIB, _cut_pair(GITHUB, 12))
        seam = body.index(b'"b": ') + 2
        self._blocked(body, JSON_TYPE, len(body), seam, GITHUB[12:].encode())

    def test_seam_inside_an_escape(self) -> None:
        escaped = "".join(f"\\u{ord(c):04x}" for c in GITHUB[11:])
        body = _json_body(9 * MIB, f'"a": "{GITHUB[:11]}", "b": "{escaped}"')
        seam = body.index(b"\\u", body.index(b'"b": ')) + 3  # after "\u0"
        self._blocked(body, JSON_TYPE, len(body), seam, escaped.encode())

    def test_seam_inside_an_escaped_quote(self) -> None:
        # A value with an escaped quote cut after its backslash: the seam must not end the string.
        body = _json_body(9 * MIB, '"q": "say \\"hi\\" now", ' + _cut_pair(GITHUB, 10))
        seam = body.index(b'\\"hi') + 1
        self._blocked(body, JSON_TYPE, len(body), seam, GITHUB[10:].encode())

    def test_long_second_value_is_not_released_unchecked(self) -> None:
        # The second piece opens a value longer than two batches: its start leaves before it ends.
        filler = "x" * (3 * MIB)
        body = _json_body(9 * MIB, f'"a": "{GITHUB[:13]}", "b": "{GITHUB[13:]}{filler}"')
        seam = body.index(GITHUB[13:].encode()) + len(GITHUB) - 13
        self._blocked(body, JSON_TYPE, len(body), seam, GITHUB[13:].encode())

    def test_bottle_secret_cut_over_two_values(self) -> None:
        body = _json_body(9 * MIB, _cut_pair(DEPLOY, 11))
        seam = body.index(b'"b": ')
        stream = _stream(JSON_TYPE, len(body))
        _send(stream, body, seam)
        self.assertTrue(stream.blocked)
        self.assertIn("DEPLOY_KEY", {f.secret_name for f in stream.findings})

    def test_ndjson_aws_key_over_two_lines(self) -> None:
        lines = [json.dumps(r) for r in _records(9 * MIB // 240, seed=3)]
        lines.append(json.dumps({"event": "x", "id": AWS[:9]}))
        lines.append(json.dumps({"id": AWS[9:], "event": "y"}))
        lines += [json.dumps(r) for r in _records(200, seed=4)]
        body = ("\n".join(lines) + "\n").encode()
        seam = body.index(b'{"id": "' + AWS[9:].encode())
        self._blocked(body, [("content-type", "application/x-ndjson")], len(body), seam, AWS[9:].encode())

    def test_form_token_over_two_fields(self) -> None:
        rng = random.Random(5)
        fields = [f"f{i}={rng.randbytes(30).hex()}" for i in range(9 * MIB // 66)]
        fields += [f"a={quote(GITHUB[:15])}", f"b={quote(GITHUB[15:])}", "c=1"]
        body = "&".join(fields).encode()
        seam = body.index(b"&b=") + 4  # inside the second value
        self._blocked(body, FORM_TYPE, len(body), seam, GITHUB[15:].encode())

    def test_form_after_binary_batches(self) -> None:
        # Binary batches (random bytes under a form type, as `curl --data-binary` sends them)
        # are not lexed: the values after them are read afresh and still meet their neighbours.
        rng = random.Random(6)
        fields = [f"f{i}={rng.randbytes(30).hex()}" for i in range(2 * MIB // 66)]
        fields += [f"a={quote(GITHUB[:15])}", f"b={quote(GITHUB[15:])}", "c=1"]
        body = b"junk=" + rng.randbytes(8 * MIB) + b"&" + "&".join(fields).encode()
        seam = body.index(b"&b=") + 4
        self._blocked(body, FORM_TYPE, len(body), seam, GITHUB[15:].encode())

    def test_random_bytes_under_form_and_json_types_pass_whole(self) -> None:
        data = random.Random(11).randbytes(9 * MIB)
        for headers in (FORM_TYPE, JSON_TYPE):
            stream = _stream(headers, len(data))
            self.assertEqual(_send(stream, data, 64 * 1024), data)
            self.assertFalse(stream.blocked)


def _multipart(fields: list[tuple[str, bytes]], boundary: str = "b0und4ry7Xq") -> tuple[bytes, list[tuple[str, str]]]:
    out = b""
    for name, value in fields:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").encode() + value + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, [("content-type", f"multipart/form-data; boundary={boundary}")]


class StreamedMultipart(unittest.TestCase):
    def test_token_over_two_text_fields_after_a_big_file(self) -> None:
        data = random.Random(8).randbytes(9 * MIB)
        body, headers = _multipart([("file", data), ("a", GITHUB[:16].encode()), ("b", GITHUB[16:].encode())])
        stream = _stream(headers, len(body))
        sent = _send(stream, body, body.index(b'name="b"'))
        self.assertTrue(stream.blocked)
        self.assertNotIn(GITHUB[16:].encode(), sent)

    def test_big_file_and_ordinary_fields_pass(self) -> None:
        data = random.Random(9).randbytes(9 * MIB)
        body, headers = _multipart([("title", b"holiday photos"), ("file", data), ("album", b"2024-summer"),
                                    ("note", b"ghp"), ("tag", b"AKIA")])
        stream = _stream(headers, len(body))
        sent = _send(stream, body, DEFAULT_BATCH + 777)
        self.assertEqual([], stream.findings)
        self.assertEqual(body, sent)


class BenignBigBodies(unittest.TestCase):
    def _clean(self, body: bytes, headers: list[tuple[str, str]]) -> None:
        stream = _stream(headers, len(body))
        sent = _send(stream, body, DEFAULT_BATCH + 12345)
        self.assertEqual([], stream.findings)
        self.assertEqual(body, sent)

    def test_package_lock_like(self) -> None:
        self._clean(_json_body(12 * MIB, '"lockfileVersion": "3"'), JSON_TYPE)

    def test_api_dump_of_ids_and_hashes(self) -> None:
        rng = random.Random(11)
        items = [{"id": f"usr_{rng.randbytes(8).hex()}", "token_hint": rng.randbytes(6).hex(),
                  "etag": base64.urlsafe_b64encode(rng.randbytes(18)).decode(), "name": "ghp", "kind": "AKIA"}
                 for _ in range(9 * MIB // 110)]
        self._clean(json.dumps({"items": items}).encode(), JSON_TYPE)

    def test_ndjson_logs(self) -> None:
        rng = random.Random(12)
        lines = [json.dumps({"ts": 1700000000 + i, "level": "info", "msg": f"request {rng.randbytes(6).hex()} ok",
                             "path": f"/api/v1/items/{i}"}) for i in range(9 * MIB // 100)]
        self._clean("\n".join(lines).encode(), [("content-type", "application/x-ndjson")])

    def test_form_of_hex_values(self) -> None:
        rng = random.Random(13)
        body = "&".join(f"k{i}={rng.randbytes(20).hex()}" for i in range(9 * MIB // 46)).encode()
        self._clean(body, FORM_TYPE)


class Adversarial(unittest.TestCase):
    def test_many_one_letter_values(self) -> None:
        body = b"[" + b'"a",' * (15 * MIB) + b'"a"]'
        stream = _stream(JSON_TYPE, len(body))
        sent = _send(stream, body, DEFAULT_BATCH, piece=4 * MIB)
        self.assertEqual([], stream.findings)
        self.assertEqual(len(body), len(sent))

    def test_unterminated_string_holds_a_bounded_carry(self) -> None:
        lexer = json_strings.ValueLexer("json")
        self.assertEqual(["x"], lexer.feed('{"k": "x", "u": "'))
        for _ in range(40):
            self.assertEqual([], lexer.feed("y\\" * (MIB // 2)))
            self.assertLessEqual(len(lexer._carry), 2 * json_strings.KEPT + 16)

    def test_deep_nesting(self) -> None:
        body = b"[" * (10 * MIB) + b'"' + GITHUB[:10].encode() + b'","' + GITHUB[10:].encode() + b'"' + b"]" * 10
        stream = _stream(JSON_TYPE, len(body))
        _send(stream, body, DEFAULT_BATCH)
        self.assertTrue(stream.blocked)


class LexerAcrossSeams(unittest.TestCase):
    def test_json_values_equal_the_whole_reading_at_any_seams(self) -> None:
        rng = random.Random(21)
        doc = [{"k\"ey": 'va"l\\ue', "n": ["x\\y", "\u00e9t\u00e9", "a\"b", "", "z"], "e": "\\\\"}] * 40
        text = json.dumps(doc, ensure_ascii=bool(rng.randrange(2)))
        whole = [v for batch in lexed_json_values(text) for v in batch]
        for _ in range(200):
            lexer = json_strings.ValueLexer("json")
            cuts = sorted(rng.sample(range(1, len(text)), 7))
            got: list[str] = []
            for start, end in zip([0, *cuts], [*cuts, len(text)]):
                got += lexer.feed(text[start:end])
            self.assertEqual(whole, [v for v in got if v])

    def test_multipart_values_at_any_seams(self) -> None:
        rng = random.Random(23)
        values = [b"alpha", b"be\r\nta", b"", b"gamma--x"]
        body, headers = _multipart([(f"f{i}", v) for i, v in enumerate(values)])
        text = body.decode("latin-1")
        for _ in range(200):
            lexer = json_strings.ValueLexer("multipart", "b0und4ry7Xq")
            cuts = sorted(rng.sample(range(1, len(text)), 5))
            got: list[str] = []
            for start, end in zip([0, *cuts], [*cuts, len(text)]):
                got += lexer.feed(text[start:end])
            self.assertEqual([v.decode() for v in values], got)

    def test_form_values_equal_the_whole_reading_at_any_seams(self) -> None:
        rng = random.Random(22)
        text = "&".join(f"k{i}={quote(f'v {i}&x=%')}" for i in range(60))
        whole = [v for v in lexed_form_values(text) if v]
        for _ in range(200):
            lexer = json_strings.ValueLexer("form")
            cuts = sorted(rng.sample(range(1, len(text)), 5))
            got: list[str] = []
            for start, end in zip([0, *cuts], [*cuts, len(text)]):
                got += lexer.feed(text[start:end])
            got += lexer.pending()
            self.assertEqual(whole, [v for v in got if v])


if __name__ == "__main__":
    unittest.main()
