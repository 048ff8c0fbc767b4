"""The bottle's secrets as JSON, HTML and string-literal escapers write them (``dlp.escaped``):
echoed back in an answer (redacted), sent out (found), in a streamed answer or upload; and
text that must not match."""

from __future__ import annotations

import html
import json
import os
import unittest

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.escaped import MIN_ANCHOR, escaped_forms, find_escaped
from bot_bottle.sidecar.dlp.known import KnownSecrets
from bot_bottle.sidecar.dlp.stream import StreamScan

# A password with the punctuation escapers change, and one with letters outside ASCII.
PASSWORD = 'Pa55/w0rd"<x>&y+Z=9\\q'
UMLAUT = "Grüße-aus-Köln-2026!"
SCANNER = Scanner({"DB_PASSWORD": PASSWORD, "GREETING": UMLAUT})


def php_json(value: str) -> str:
    return json.dumps(value)[1:-1].replace("/", "\\/")


def go_json(value: str) -> str:
    escaped = json.dumps(value, ensure_ascii=False)[1:-1]
    return escaped.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def kept(c: str) -> bool:
    """What OWASP's encoders keep as it is: letters and digits, ``-``, ``_`` and ``.``."""
    return (c.isascii() and c.isalnum()) or c in "-_."


def numeric_html(value: str, hexadecimal: bool = False) -> str:
    return "".join(c if kept(c) else (f"&#x{ord(c):X};" if hexadecimal else f"&#{ord(c)};")
                   for c in value)


def named_html(value: str) -> str:
    return html.escape(value).replace("/", "&sol;").replace("+", "&plus;").replace("=", "&equals;")


def python_bytes_literal(value: str) -> str:
    """``repr`` of the value's bytes, punctuation written as ``\\x..``."""
    return "".join(c if kept(c) else "".join(f"\\x{b:02x}" for b in c.encode()) for c in value)


ESCAPERS = {
    "json": lambda v: json.dumps(v, ensure_ascii=False)[1:-1],
    "json, ASCII only": lambda v: json.dumps(v)[1:-1],
    "json, slashes escaped (PHP)": php_json,
    "json, HTML-safe (Go)": go_json,
    "json inside a json string": lambda v: json.dumps(json.dumps(v))[1:-1],
    "html": html.escape,
    "html, named references for all": named_html,
    "html, decimal references": numeric_html,
    "html, hex references": lambda v: numeric_html(v, hexadecimal=True),
    "html, zero-padded references": lambda v: numeric_html(v).replace("&#", "&#000"),
    "xml text": lambda v: html.escape(v, quote=False),
    "string literal \\x": python_bytes_literal,
}


def names(findings) -> set[str | None]:
    return {f.secret_name for f in findings}


class EchoedAnswers(unittest.TestCase):
    """An upstream that echoes the bottle's secret in its answer, as its encoder writes it."""

    def test_each_escaper_is_redacted_in_an_answer(self):
        for label, escape in ESCAPERS.items():
            for name, value in (("DB_PASSWORD", PASSWORD), ("GREETING", UMLAUT)):
                written = escape(value)
                if written == value:
                    continue
                answer = '{"echo": {"password": "%s"}, "ok": true}' % written
                with self.subTest(escaper=label, secret=name):
                    redacted = SCANNER.redact_echoed_secrets(answer.encode("utf-8"))
                    self.assertTrue(redacted.changed)
                    self.assertIn(name, names(redacted.findings))
                    self.assertNotIn(written.encode("utf-8"), bytes(redacted.content))
                    # The rest of the answer is kept.
                    self.assertTrue(bytes(redacted.content).endswith(b'"}, "ok": true}'))

    def test_each_character_its_own_way(self):
        mixed = "Pa55\\/w0rd&quot;\\u003cx&#62;&amp;y&#x2b;Z=9\\\\q"
        redacted = SCANNER.redact_echoed_secrets(f"<p>{mixed}</p>")
        self.assertEqual(str(redacted.content), "<p>[REDACTED:DB_PASSWORD]</p>")

    def test_a_streamed_answer_batch(self):
        # Large answers are read batch by batch through the prefilter: the escaped form's anchor
        # is one of its searches.
        noise = os.urandom(300_000)
        batch = bytearray(noise + php_json(PASSWORD).encode() + noise)
        found = SCANNER.scan_batch(batch, "body")
        self.assertIn("DB_PASSWORD", names(found))
        hit = next(f for f in found if f.secret_name == "DB_PASSWORD")
        self.assertEqual(bytes(batch[hit.start:hit.end]), php_json(PASSWORD).encode())

    def test_the_raw_value_is_reported_once_as_raw(self):
        found = SCANNER.redact_echoed_secrets(f"x {PASSWORD} y").findings
        self.assertEqual([(f.secret_name, f.encoding) for f in found], [("DB_PASSWORD", None)])


class SentOut(unittest.TestCase):
    def test_html_escaped_secret_in_a_text_body_is_found(self):
        for label in ("html", "html, named references for all", "xml text"):
            body = ("<form><input value='%s'></form>" % ESCAPERS[label](PASSWORD)).encode()
            with self.subTest(escaper=label):
                found = SCANNER.scan_request("POST", "https://docs.example/", [("content-type", "text/html")], body)
                self.assertIn("DB_PASSWORD", names(found))

    def test_streamed_upload_stops_at_an_escaped_secret(self):
        scanner = Scanner({"DB_PASSWORD": PASSWORD})
        plan = StreamScan(scan_batch=lambda b: scanner.scan_batch(b, "body", deep=True),
                          scan_whole=lambda b: scanner.scan_request("POST", "", [], b))
        sent = plan.feed(os.urandom(3 << 20))
        sent += plan.feed(numeric_html(PASSWORD).encode() + os.urandom(2 << 20))
        sent += plan.finish()
        self.assertTrue(plan.blocked)
        self.assertNotIn(numeric_html(PASSWORD).encode(), sent)


class Forms(unittest.TestCase):
    def test_values_with_nothing_to_escape_have_no_form(self):
        self.assertEqual(escaped_forms([("T", "sk-ant-api03-abcDEF_123.xyz")]), ())

    def test_values_without_a_long_enough_anchor_have_no_form(self):
        short_runs = "a/b/c!d?e#f$" + "x" * (MIN_ANCHOR - 1)
        self.assertEqual(escaped_forms([("T", short_runs)]), ())

    def test_a_form_never_shows_the_value(self):
        (form,) = escaped_forms([("DB_PASSWORD", PASSWORD)])
        self.assertNotIn("w0rd", repr(form))
        self.assertNotIn("w0rd", repr(KnownSecrets({"DB_PASSWORD": PASSWORD})))

    def test_near_misses_do_not_match(self):
        forms = escaped_forms([("DB_PASSWORD", PASSWORD)])
        for text in (
            php_json(PASSWORD)[:-1],  # cut short
            php_json(PASSWORD).replace("w0rd", "w0rD"),  # a letter changed
            php_json(PASSWORD).replace("\\/", "\\u002e"),  # another character escaped
            numeric_html(PASSWORD).replace("&#47;", "&#47"),  # a reference without its end
            "Pa55 w0rd and x y Z 9 q: the value's runs of letters, apart",
        ):
            with self.subTest(text=text):
                self.assertEqual(find_escaped(forms, text), [])

    def test_ordinary_escaped_text_does_not_match(self):
        forms = escaped_forms([("DB_PASSWORD", PASSWORD), ("GREETING", UMLAUT)])
        text = json.dumps({"html": "<p>Pa55 &amp; w0rd</p>", "path": "a\\/b", "u": "\u00fc" * 40}) * 200
        self.assertEqual(find_escaped(forms, text), [])


if __name__ == "__main__":
    unittest.main()
