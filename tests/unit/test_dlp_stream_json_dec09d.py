"""A streamed JSON upload reads JSON string escapes as the held body's scan does, and the cheap
pre-checks of the escape and run decoders are pinned at their edges.

A JSON body larger than the size the full scan parses is streamed as text, batch by batch: a
bottle secret or a token written with ``\\u`` escapes (four hex digits each, a surrogate pair
for a character beyond the BMP), or with ``\\/``, ``\\"`` and ``\\\\`` inside, in a key or a
value, is found there too (the decoded layer's unescaped reading), also when a batch seam cuts
an escape, and also for a secret whose escaped form is longer than the default overlap (the
overlap covers seven characters per byte of the longest secret). JSON full of escapes that hold
nothing (accented text, emoji, Windows paths, PHP's ``\\/`` in URLs) stays clean. The
pre-checks: ``has_escapes`` and the ``&#``/``%u`` gates, the one search that tells a text holds
no ``\\0NNN`` read apart, the escape list built a list at a time (and the overlapping escapes of
two schemes), the regions around escapes, runs next to characters beyond latin-1, the
hex-stretch gate of a run, the zlib-header gate, wrapped blocks in one pattern, the character
gate of a text stored wide, and base32hex in both cases found by one search."""

from __future__ import annotations

import base64
import bisect
import json
import random
import re
import unittest
import zlib

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.scanner import ACROSS_REQUESTS
from bot_bottle.sidecar.dlp import encodings, known
from bot_bottle.sidecar.dlp.encodings import MIN_RUN, decode_runs, escaped_regions, has_escapes, unescape_readings
from bot_bottle.sidecar.dlp.known import GATE_MIN_TEXT, KnownSecrets, wrapped_blocks
from bot_bottle.sidecar.dlp.stream import DEFAULT_BATCH, StreamScan, overlap_for
from bot_bottle.sidecar.egress.dlp_adapter import DlpOutbound
from tests.unit.test_egress_dlp_adapter import OWN, POLICY, request

PLAIN = "Zq8vR2mT4kL9pW3xN7yB1cF6"
SLASHED = "s3cr3t/Kq7Zt93x/LmW2pR8v"
QUOTED = 'pw"Kq7Zt93x"LmW2pR8vQ'
BACKSLASHED = "dom\\Kq7Zt93xLmW2pR8vZ"
KEYED = "Hy4Lq9Wz2Rt7Kp3Vn8Xc5Bm"  # a bottle secret with a lock emoji inside: a surrogate pair in JSON
EMOJI = "Jf5Qx8Lr\U0001F5DDNw3Tz6Pv9Sa"
SECRETS = {"PLAIN": PLAIN, "SLASHED": SLASHED, "QUOTED": QUOTED, "BACKSLASHED": BACKSLASHED, "KEYED": KEYED,
           "EMOJI": EMOJI}
GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
SCANNER = Scanner(SECRETS)
MIB = 1 << 20


def u_escaped(value: str, upper: bool = False) -> str:
    """Every character as ``\\u`` and four hex digits (a surrogate pair beyond the BMP), as ``json.dumps`` of
    text outside ASCII writes them, for every character."""
    out = []
    for unit in value.encode("utf-16-be").hex(" ", 2).split():
        out.append("\\u" + (unit.upper() if upper else unit))
    return "".join(out)


def json_escaped(value: str) -> str:
    """``value`` in a JSON string as ``json.dumps`` writes it, ``/`` as PHP writes it."""
    return json.dumps(value)[1:-1].replace("/", "\\/")


def records(size: int, rng: random.Random, escapes: bool = False) -> bytes:
    """JSON records, about ``size`` bytes, one array; with ``escapes``, text full of escapes."""
    notes = ["caf\u00e9 na\u00efve r\u00e9sum\u00e9 \U0001F600\U0001F680", "C:\\Users\\bob\\Documents\\report.docx",
             'line one\nline two\t"quoted"', "\u4f60\u597d\u4e16\u754c \u041f\u0440\u0438\u0432\u0435\u0442",
             "https://example.com/a/b/c?x=1&y=2", "\u00c5ngstr\u00f6m \u00e7a va \u00df \u00f1and\u00fa"]
    parts, total = [], 0
    while total < size:
        item = {"id": rng.randrange(1 << 40), "user": f"user_{rng.randrange(10 ** 6)}",
                "text": " ".join(rng.choice(["alpha", "beta", "gamma", "delta", "order"]) for _ in range(8))}
        if escapes:
            item["note"] = rng.choice(notes)
        part = json.dumps(item).replace("/", "\\/") if escapes else json.dumps(item)
        parts.append(part)
        total += len(part) + 1
    return ("[" + ",".join(parts) + "]").encode()


def planted(body: bytes, at: int, piece: str) -> bytes:
    """``piece`` (JSON text: one more member) planted at the record boundary at or after ``at``."""
    cut = body.index(b"},{", at) + 2
    return body[:cut] + piece.encode() + b"," + body[cut:]


def stream_findings(body: bytes, chunk: int = 1 << 16) -> list:
    """``body`` through a streamed JSON upload's scanner as the proxy builds it (larger than the
    full scan parses: read as text, a batch at a time)."""
    # A fresh adapter each time: the pieces of secrets one upload sends are remembered by the
    # adapter, and would count towards the next test's body.
    adapter = DlpOutbound(POLICY, {"ANTHROPIC": OWN}, SECRETS)
    stream = adapter.stream_scan(request(b"", headers=[("content-type", "application/json")]), len(body))
    assert stream is not None and not stream.whole
    for i in range(0, len(body), chunk):
        stream.feed(body[i:i + chunk])
        if stream.blocked:
            return stream.findings
    stream.finish()
    return stream.findings


def batch_findings(body: bytes, chunk: int = 1 << 16) -> list:
    """``body`` through a ``StreamScan`` batch by batch (the proxy's batch and overlap), small."""
    stream = StreamScan(scan_batch=lambda batch: SCANNER.scan_batch(batch, "body", deep=True),
                        scan_whole=lambda whole: SCANNER.scan_request("POST", "", [], whole),
                        overlap=overlap_for(list(SECRETS.values())), sniff_json=False)
    for i in range(0, len(body), chunk):
        stream.feed(body[i:i + chunk])
        if stream.blocked:
            return stream.findings
    stream.finish()
    return stream.findings


def names(findings) -> set[str]:
    return {f.secret_name or f.detector for f in findings}


def whole_names(findings) -> set[str]:
    """``names`` of what was found whole: these secrets share pieces ("Kq7Zt93x", "LmW2pR8v"), so
    one of them sent also completes another's pieces, found as split across requests."""
    return names(f for f in findings if f.encoding != ACROSS_REQUESTS)


BIG = records(9 * MIB, random.Random(1))  # past the full scan's structured limit: streamed
BIG_ESCAPED = records(9 * MIB, random.Random(2), escapes=True)


class StreamedJsonEscapesTest(unittest.TestCase):
    def test_each_escape_form_of_a_bottle_secret_is_found_streamed(self) -> None:
        cases = {
            "PLAIN": [u_escaped(PLAIN), u_escaped(PLAIN, upper=True), PLAIN[:6] + u_escaped(PLAIN[6:9]) + PLAIN[9:]],
            "SLASHED": [json_escaped(SLASHED), u_escaped(SLASHED)],
            "QUOTED": [json_escaped(QUOTED), QUOTED.replace('"', "\\u0022")],
            "BACKSLASHED": [json_escaped(BACKSLASHED), u_escaped(BACKSLASHED)],
            "EMOJI": [json.dumps(EMOJI)[1:-1], u_escaped(EMOJI)],
            # A JSON string inside a JSON string: the backslashes doubled.
            "KEYED": [json.dumps(u_escaped(KEYED))[1:-1]],
        }
        self.assertIn("\\ud83d\\udddd", cases["EMOJI"][0])  # json.dumps writes the surrogate pair
        for name, forms in cases.items():
            for form in forms:
                with self.subTest(name=name, form=form[:30]):
                    body = planted(BIG, 5 * MIB, '{"value": "%s"}' % form)
                    self.assertEqual(whole_names(stream_findings(body)), {name})

    def test_a_token_format_u_escaped_is_found_streamed(self) -> None:
        body = planted(BIG, 7 * MIB, '{"token": "%s"}' % u_escaped(GITHUB))
        self.assertEqual({f.detector for f in stream_findings(body)}, {"github-token"})

    def test_an_escaped_secret_in_a_key_is_found_streamed(self) -> None:
        for name, value in (("KEYED", KEYED), ("SLASHED", SLASHED)):
            with self.subTest(name=name):
                body = planted(BIG, 3 * MIB, '{"%s": 1}' % u_escaped(value))
                self.assertEqual(names(stream_findings(body)), {name})

    def test_an_escape_cut_by_a_batch_seam_is_found(self) -> None:
        # The first batch is scanned when a batch has arrived, and all but the overlap released:
        # the secret is placed so each seam (the batch's end, the release cut) falls inside one
        # of its escapes, at every one of the escape's six characters.
        small = records(3 * MIB, random.Random(3))
        filler = small[1:small.index(b"}", 200_000) + 1] + b","
        form = u_escaped(PLAIN).encode()
        piece = b'{"v": "' + form + b'"}'
        head = len(b'{"v": "')
        overlap = overlap_for(list(SECRETS.values()))
        for seam in (DEFAULT_BATCH, DEFAULT_BATCH - overlap):
            for inside in range(6):
                with self.subTest(seam=seam, inside=inside):
                    start = seam - head - 6 * 5 - inside  # the sixth escape is cut
                    body = bytearray(b" " * start)
                    body[: len(filler)] = filler
                    body += piece + b"," + filler * 12
                    self.assertEqual(bytes(body[start + head + 30 : start + head + 36]), form[30:36])
                    self.assertEqual(names(batch_findings(bytes(body), chunk=4096)), {"PLAIN"})

    def test_a_long_secret_u_escaped_across_a_seam_is_found_before_any_of_it_leaves(self) -> None:
        # Twelve thousand characters, \u-escaped: 72,000, longer than the default overlap. The
        # overlap covers seven characters per byte of the longest secret (an escape inside a
        # JSON string inside a JSON string), so some batch holds the whole form.
        rng = random.Random(8)
        value = "".join(rng.choice("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(12_000))
        scanner = Scanner({"LONG": value})
        self.assertGreaterEqual(overlap_for([value]), 7 * len(value))
        form = u_escaped(value).encode()
        line = b'{"a": "plain words here", "b": 12345},\n'
        filler = line * (3 * DEFAULT_BATCH // len(line))
        at = DEFAULT_BATCH - 70_000  # starts before the first release cut, ends past the first batch
        body = filler[:at] + form + filler[at:]
        stream = StreamScan(scan_batch=lambda batch: scanner.scan_batch(batch, "body", deep=True),
                            scan_whole=lambda whole: scanner.scan_request("POST", "", [], whole),
                            overlap=overlap_for([value]), sniff_json=False)
        released = 0
        for i in range(0, len(body), 1 << 16):
            released += len(stream.feed(body[i:i + (1 << 16)]))
            if stream.blocked:
                break
        self.assertEqual(names(stream.findings), {"LONG"})
        self.assertLessEqual(released, at)

    def test_json_full_of_escapes_holding_nothing_is_clean_streamed(self) -> None:
        self.assertEqual(stream_findings(BIG_ESCAPED), [])

    def test_look_alikes_of_the_secrets_escaped_are_clean(self) -> None:
        # Each secret's last 8 characters changed: one character changed would leave all but a
        # few of it, which counts as the secret sent (the search for its pieces).
        lookalikes = [value[:-8] + "zzzzzzzz" for value in (PLAIN, SLASHED, QUOTED, BACKSLASHED, EMOJI)]
        lookalikes.append(GITHUB[:20])
        body = BIG_ESCAPED
        for i, value in enumerate(lookalikes):
            body = planted(body, (i + 1) * MIB, '{"v": "%s", "w": "%s"}' % (u_escaped(value), json_escaped(value)))
        self.assertEqual(stream_findings(body), [])

    def test_streamed_and_held_scans_agree_on_an_escaped_secret(self) -> None:
        body = planted(records(300_000, random.Random(4)), 100_000, '{"v": "%s"}' % u_escaped(SLASHED))
        held = SCANNER.scan_request("POST", "", [("content-type", "application/json")], body)
        self.assertEqual(names(held), {"SLASHED"})
        self.assertEqual(names(SCANNER.scan_batch(body, "body", deep=True)), {"SLASHED"})


def reference_regions(text: str, encoding: str, reach: int) -> list[tuple[int, int]]:
    """``escaped_regions`` written one escape at a time."""
    pattern = encodings._PERCENT if encoding == "url" else None
    spans = [m.span() for m in (pattern.finditer(text) if pattern else encodings._escape_matches(text))]
    regions = []
    for start, end in spans:
        before = text[start - 1] if start else ""
        after = text[end] if end < len(text) else ""
        if before in encodings._VALUE_CHARS or after in encodings._VALUE_CHARS:
            regions.append((max(0, start - reach), min(len(text), end + reach)))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(regions):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def reference_unescape(text: str) -> tuple[str, list[tuple[int, int]]]:
    """The unescaped text and, per decoded character, the span of the text it came from."""
    out, spans, previous = [], [], 0
    for m in encodings._escape_matches(text):
        if m.start() < previous:
            continue
        for i in range(previous, m.start()):
            out.append(text[i])
            spans.append((i, i + 1))
        for ch in encodings._escaped_char(m):
            out.append(ch)
            spans.append(m.span())
        previous = m.end()
    for i in range(previous, len(text)):
        out.append(text[i])
        spans.append((i, i + 1))
    return "".join(out), spans


class EscapePreChecksTest(unittest.TestCase):
    def test_has_escapes_marks(self) -> None:
        for text, expected in [("a & b # c", False), ("&#65;", True), ("x&#x41", True), ("50% used, u", False),
                               ("%u0041", True), ("path\\to", True), ("", False), ("& #", False), ("%", False),
                               ("\U0001F600 & # %", False), ("\U0001F600&#65;", True), ("\u4e00%u4e00", True)]:
            with self.subTest(text=text):
                self.assertIs(has_escapes(text), expected)

    def test_a_backslash_zero_read_apart_is_read_both_ways_among_many_escapes(self) -> None:
        many = "\\u00e9\\n" * 5000
        for text, readings in [(many + "\\0123", ["\n3", "S"]), ("\\0123" + many, ["\n3", "S"]),
                               (many + "\\0047", ["'"]), (many + "\\\\0123", ["\\0123"]), (many, [])]:
            with self.subTest(text=text[-8:]):
                found = [layer.text.replace("\u00e9\n", "") for layer in unescape_readings(text)]
                self.assertEqual(sorted(found), sorted(readings) if readings else [""])

    def test_unescaped_text_and_offsets_match_one_escape_at_a_time(self) -> None:
        rng = random.Random(5)
        pieces = ["\\u0041", "\\ud83d\\ude00", "\\ud83d", "\\\\", '\\"', "\\/", "\\n", "\\x41", "\\0123", "\\47",
                  "&#65;", "&#x41", "%u0041", "\\x26#65;", "\\u{1F600}", "abc", " ", "\u00e9", "\\", "&", "%"]
        for _ in range(3000):
            text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
            layers = unescape_readings(text)
            expected, spans = reference_unescape(text)
            if not layers:
                self.assertEqual(expected, text)
                continue
            layer = layers[0]
            self.assertEqual(layer.text, expected, text)
            for i, span in enumerate(spans):
                start, end = layer.to_parent(i, i + 1)
                self.assertLessEqual(start, span[0], text)
                self.assertGreaterEqual(end, span[1], text)

    def test_escaped_regions_match_one_escape_at_a_time(self) -> None:
        rng = random.Random(6)
        pieces = ["\\u0041", "\\\\", "%41", "&#65;", "x", " ", "\x00", "\u00e9", "\U0001F600", "\\", "%", "\n",
                  "%u0041", "\\x26#65;", "ab" * 20, " " * 50]
        for _ in range(4000):
            text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
            for encoding in ("url", "escape"):
                for reach in (0, 1, 3, 10, 4096):
                    self.assertEqual(escaped_regions(text, encoding, reach), reference_regions(text, encoding, reach))


def reference_runs(text: str) -> list[tuple[int, int]]:
    """The runs of a text beyond latin-1, as the pattern finds them."""
    return [m.span() for m in encodings._B64_RUN.finditer(text)]


class RunPreChecksTest(unittest.TestCase):
    def test_runs_beside_characters_beyond_latin1_are_the_patterns(self) -> None:
        b64 = base64.b64encode(b"a secret sentence of plain text!").decode()
        for text in [f"\U0001F600{b64}\U0001F600", f"\u4e00{b64}==\u4e00", f"{b64}\u20ac{b64}",
                     f"\ud800{b64}=", "\u4e00" * 30]:
            with self.subTest(text=text[:4]):
                self.assertEqual(encodings._run_spans(text), reference_runs(text))
        found = decode_runs(f"\U0001F600 {b64} \U0001F600", limit=1 << 20)
        self.assertEqual([d.text for d in found], ["a secret sentence of plain text!"])

    def test_hex_of_text_is_decoded_with_exactly_min_run_digits_after_a_prefix(self) -> None:
        hexed = b"plain text!!".hex()
        self.assertEqual(len(hexed), MIN_RUN)
        for text in [hexed, "key_" + hexed, "x-" + hexed, "/path/" + hexed, hexed + "=="]:
            with self.subTest(text=text):
                self.assertEqual([d.text for d in decode_runs(f" {text} ", limit=1 << 20)], ["plain text!!"])
        # One digit short after the prefix: no hex part (and no base64 of text either).
        self.assertEqual(decode_runs(" key_" + hexed[:-1] + " ", limit=1 << 20), [])

    def test_base64_of_zlib_behind_up_to_three_characters_is_inflated(self) -> None:
        packed = base64.b64encode(zlib.compress(b"inflated words of text " * 4)).decode()
        self.assertTrue(packed.startswith("eJ"))
        for prefix in ("", "Q", "QQ", "QQQ"):
            with self.subTest(prefix=prefix):
                found = decode_runs(f" {prefix}{packed} ", limit=1 << 20)
                self.assertTrue(any("inflated words" in d.text for d in found), found)


def reference_blocks(text: str) -> list[tuple[int, int]]:
    """``wrapped_blocks`` with its two patterns called one after the other."""
    shape = text.encode("latin-1", "replace").translate(known._LINE_MAP)
    blocks, m = [], known._LONG_LINE.search(shape)
    while m is not None:
        end = known._MORE_LINES.match(shape, m.end()).end()
        if end > m.end():
            blocks.append((m.start(), end))
        m = known._LONG_LINE.search(shape, end)
    return blocks


class KnownPreChecksTest(unittest.TestCase):
    def test_wrapped_blocks_in_one_pattern(self) -> None:
        rng = random.Random(7)
        pieces = ["A" * 39, "A" * 40, "A" * 41, "B" * 80, "\n", "\r\n", " ", "\x00", "\u00e9", "\u4e00", "x" * 45]
        for _ in range(4000):
            text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 25)))
            self.assertEqual(wrapped_blocks(text), reference_blocks(text), text)
        wrapped = base64.a85encode(bytes(range(200)) * 3, wrapcol=76).decode()
        self.assertEqual(wrapped_blocks("x\n" + wrapped + "\n"), reference_blocks("x\n" + wrapped + "\n"))
        self.assertTrue(wrapped_blocks(wrapped))

    def test_forms_are_found_in_a_large_text_stored_wide(self) -> None:
        secrets = KnownSecrets({"A": "Vx9!kQ2#mW7pL4zR", "B": "p\u00e4ssw\u00f6rd-\u00dcn\u00efcode-42"})
        filler = ("ordinary words, nothing here " * 4000)[: GATE_MIN_TEXT + 100]
        forms = {"A": base64.b85encode(b"Vx9!kQ2#mW7pL4zR").decode(), "B": "p\u00e4ssw\u00f6rd-\u00dcn\u00efcode-42"}
        for wide in ("\U0001F600", "\u4e00", "\u00e9"):
            for name, form in forms.items():
                with self.subTest(wide=wide, name=name):
                    text = wide + filler + form + filler + wide
                    hits = secrets.find(text) + secrets.find_base85(text)
                    self.assertIn(name, {h.secret_name for h in hits})
                    # Absent from a wide text of the same characters but the form's own.
                    clean = wide + filler + filler + wide
                    self.assertEqual(secrets.find(clean) + secrets.find_base85(clean), [])

    def test_a_question_mark_in_an_anchor_is_not_taken_from_wide_characters(self) -> None:
        # "?" stands for every wider character in the narrowed bytes: an anchor holding one is
        # asked of the text itself.
        value = "Qz?8vR2mT4?kL9pW3xN7"
        secrets = KnownSecrets({"Q": value})
        filler = ("plain words \u4e00 " * 6000)[: GATE_MIN_TEXT + 100]
        self.assertEqual(secrets.find(filler + value.replace("?", "\u4e00") + filler), [])
        self.assertEqual({h.secret_name for h in secrets.find(filler + value + filler)}, {"Q"})

    def test_base32hex_is_found_in_either_case_only_as_written(self) -> None:
        value = "Vx9!kQ2#mW7pL4zR"
        secrets = KnownSecrets({"V": value})
        upper = base64.b32hexencode(value.encode()).decode().rstrip("=")
        # Every letter and digit of both cases' alphabets: both forms pass the character gate,
        # so the pair is found by one search of the lower-cased text.
        filler = ("ABCDEFGHIJKLMNOPQRSTUV abcdefghijklmnopqrstuv 0123456789, words " * 1200)[: GATE_MIN_TEXT + 50]
        for form in (upper, upper.lower()):
            for text in (form, filler + form + filler, "x\n" + form[:30] + "\n" + form[30:] + "\n"):
                with self.subTest(form=form[:6], size=len(text)):
                    hits = [h for h in secrets.find_base85(text) if h.encoding == "base32hex"]
                    self.assertTrue(hits)
                    self.assertTrue(all(text[h.start:h.end].replace("\n", "") in form for h in hits))
        # Mixed case is neither form: base32hex is written in one case.
        mixed = "".join(c.lower() if i % 2 else c for i, c in enumerate(upper))
        self.assertNotEqual(mixed, upper.lower())
        self.assertEqual([h for h in secrets.find_base85(filler + mixed + filler) if h.encoding == "base32hex"], [])


if __name__ == "__main__":
    unittest.main()
