"""The bottle's secrets retyped with lookalike letters of other scripts (Cyrillic, Greek,
Armenian), with a single compatibility character, or in ROT13; and the ordinary texts in those
scripts that must stay clean."""

from __future__ import annotations

import base64
import codecs
import functools
import json
import random
import unittest

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.compat import LOOKALIKES, compat_regions, fold
from tests.unit import test_dlp_disguises as disguises
from tests.unit import test_dlp_fakes as fakes

RNG = random.Random(1313)
SECRET = "vault-" + fakes.rand(RNG, 26)
SCANNER = Scanner({"API_SECRET": SECRET})
scan = functools.partial(disguises.scan, scanner=SCANNER)
# Latin letter -> one of its lookalikes.
TO_LOOKALIKE = {latin: other for other, latin in LOOKALIKES.items()}


def disguised(value: str, at: list[int]) -> str:
    chars = list(value)
    for i in at:
        chars[i] = TO_LOOKALIKE[chars[i]]
    return "".join(chars)


def replaceable(value: str) -> list[int]:
    return [i for i, c in enumerate(value) if c in TO_LOOKALIKE]


class LookalikeTest(unittest.TestCase):
    def test_one_or_all_replaceable_letters_in_every_kind_of_body(self) -> None:
        spots = replaceable(SECRET)
        self.assertGreater(len(spots), 4)
        for label, at in (("first", spots[:1]), ("last", spots[-1:]), ("all", spots)):
            text = disguised(SECRET, at)
            self.assertNotEqual(text, SECRET)
            bodies = {
                "text/plain": f"the key: {text}.".encode(),
                "application/json": json.dumps({"k": text}).encode(),
                "application/json ": json.dumps({"k": text}, ensure_ascii=False).encode(),
            }
            for content_type, body in bodies.items():
                with self.subTest(label, content_type=content_type):
                    self.assertEqual(disguises.names(scan(body, content_type.strip())), {"API_SECRET"})

    def test_every_lookalike_folds_to_its_letter(self) -> None:
        for other, latin in LOOKALIKES.items():
            with self.subTest(other):
                self.assertEqual(fold(other), latin)
                self.assertFalse(other.isascii())

    def test_a_single_fullwidth_character_in_text(self) -> None:
        text = SECRET[:7] + chr(ord(SECRET[7]) + 0xFEE0) + SECRET[8:]
        self.assertEqual(disguises.names(scan(f"k={text}")), {"API_SECRET"})

    def test_streamed_utf8_text_with_one_lookalike(self) -> None:
        filler = "обычный текст журнала без секретов, строка {}\n"
        body = ("".join(filler.format(i) for i in range(20000)) + disguised(SECRET, replaceable(SECRET)[:1])
                + "\n" + "".join(filler.format(i) for i in range(20000))).encode()
        stream, _ = disguises.streamed(body, SCANNER)
        self.assertEqual(disguises.names(stream.findings), {"API_SECRET"})

    def test_prose_in_those_scripts_is_clean(self) -> None:
        cases = [
            "Съешь же ещё этих мягких французских булок, да выпей чаю. Ключ API хранится в сейфе.",
            "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Ο κωδικός δεν είναι εδώ.",
            "Բարև ձեզ, սա սովորական տեքստ է առանց գաղտնիքների։",
            "ТОКЕН СЕКРЕТ КЛЮЧ РАСХОД ОРЕХ МОСКВА АКЦИЯ ВЕКТОР КОСМОС ТАКСИ",
            "ÅKE ıstanbul ɡood ʏes, naïve café, Straße",
        ]
        for text in cases:
            with self.subTest(text[:12]):
                for content_type in ("text/plain", "application/json"):
                    body = text if content_type == "text/plain" else json.dumps({"t": text}, ensure_ascii=False)
                    self.assertEqual(scan(body.encode(), content_type), [])

    def test_only_words_mixing_scripts_with_ascii_are_candidates(self) -> None:
        from bot_bottle.sidecar.dlp import compat

        prose = "ТОКЕН СЕКРЕТ КЛЮЧ РАСХОД ОРЕХ, сейф; Ο κωδικός — «кавычки» … ok 12 abc"
        self.assertEqual(compat._candidates(prose), [])
        mixed = "key: Кq7vΝ2хРz and ААААq9"
        runs = [(mixed[s:e], folded) for s, e, folded, _ in compat._candidates(mixed)]
        self.assertEqual(runs, [("К", "K"), ("Ν", "N"), ("хР", "xP"), ("АААА", "AAAA")])
        # The same from UTF-8 bytes, placed on the bytes.
        data = mixed.encode()
        from_bytes = compat._candidates(data.decode("latin-1"))
        self.assertEqual([(data[s:e].decode(), folded) for s, e, folded, _ in from_bytes], runs)

    def test_a_window_cut_inside_a_character_is_still_utf8_text(self) -> None:
        from bot_bottle.sidecar.dlp import compat

        data = ("щ" + disguised(SECRET, replaceable(SECRET)[:1]) + " конец ж").encode()
        for cut_start in (0, 1):
            for cut_end in (0, 1):
                piece = data[cut_start:len(data) - cut_end]
                with self.subTest(cut_start=cut_start, cut_end=cut_end):
                    self.assertEqual(compat.utf8_windows(piece), [(0, len(piece))])
                    self.assertEqual(disguises.names(SCANNER.scan_batch(piece, deep=True)), {"API_SECRET"})
        self.assertEqual(compat.utf8_windows(b"\x80\x80\x80\x80abc\xd0"), [])  # more than a cut character

    def test_every_compatibility_character_is_found_next_to_east_asian_text(self) -> None:
        # Kana, Hangul and CJK share their first UTF-8 byte with some compatibility characters
        # and are searched apart from the others: each character must still be found after and
        # before any of them, as characters and as UTF-8 bytes.
        from bot_bottle.sidecar.dlp import compat

        chars = [chr(cp) for cp in range(0x80, 0x20000)
                 if not 0xD800 <= cp < 0xE000 and compat._folds_to_ascii(chr(cp)) and chr(cp) not in LOOKALIKES]
        self.assertGreater(len(chars), 500)
        neighbours = "あア한中ж"
        for ch in chars:
            for left in neighbours:
                text = f"{left}{ch}{left}"
                with self.subTest(hex(ord(ch)), left=left):
                    self.assertEqual([(s, e) for s, e, _, _ in compat._candidates(text)], [(1, 2)])
                    data = text.encode()
                    width = len(left.encode())
                    found = compat._candidates(data.decode("latin-1"))
                    self.assertEqual([(s, e) for s, e, _, _ in found], [(width, width + len(ch.encode()))])

    def test_kana_hangul_and_cjk_are_not_candidates(self) -> None:
        from bot_bottle.sidecar.dlp import compat

        prose = "認証モジュールをリファクタリングして、テストが通るように。인증 모듈을 리팩터링하고 阅读代码"
        self.assertEqual(compat._candidates(prose), [])
        self.assertEqual(compat._candidates(prose.encode().decode("latin-1")), [])

    def test_a_disguised_secret_in_japanese_and_korean_text(self) -> None:
        fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in SECRET)
        for text in ("鍵は" + fullwidth + "です。", "키는 " + disguised(SECRET, replaceable(SECRET)[:1]) + "입니다",
                     "テスト" + SECRET[:5] + chr(ord(SECRET[5]) + 0xFEE0) + SECRET[6:] + "ください"):
            for content_type in ("text/plain", "application/json"):
                body = text if content_type == "text/plain" else json.dumps({"t": text}, ensure_ascii=False)
                with self.subTest(text[:3], content_type=content_type):
                    self.assertEqual(disguises.names(scan(body.encode(), content_type)), {"API_SECRET"})
                    if content_type == "text/plain":
                        self.assertEqual(disguises.names(SCANNER.scan_batch(body.encode(), deep=True)),
                                         {"API_SECRET"})

    def test_random_binary_data_gets_no_lookalike_regions(self) -> None:
        # Seeded: about one MiB in three hundred of random bytes holds a chance stretch that reads
        # as text (one region of ~130 bytes, harmless); what matters is that noise is not read
        # as text wholesale, and that nothing in it is a finding.
        for seed in range(3):
            noise = random.Random(seed).randbytes(1 << 20)
            self.assertLessEqual(sum(end - start for start, end in compat_regions(noise, 64)), 1024)
        self.assertEqual(compat_regions(random.Random(0).randbytes(1 << 20), 64), [])
        self.assertEqual(scan(random.Random(1).randbytes(1 << 20), "application/octet-stream"), [])


class Rot13Test(unittest.TestCase):
    def test_rot13_in_any_case(self) -> None:
        rotated = codecs.encode(SECRET, "rot13")
        for text in (rotated, rotated.upper(), rotated.lower()):
            with self.subTest(text[:5]):
                self.assertEqual([(f.secret_name, f.encoding) for f in scan(f"x {text} y")], [("API_SECRET", "rot13")])

    def test_a_short_secret_in_rot13_keeps_its_case(self) -> None:
        scanner = Scanner({"PIN_LIKE": "Abcdef123"})
        self.assertEqual(disguises.names(disguises.scan("x Nopqrs123 y", scanner=scanner)), {"PIN_LIKE"})
        self.assertEqual(disguises.scan("x nopqrs123 y", scanner=scanner), [])

    def test_a_value_without_letters_has_no_rot13_form(self) -> None:
        scanner = Scanner({"DIGITS": "4711-0815-2342"})
        findings = disguises.scan("x 4711-0815-2342 y", scanner=scanner)
        self.assertEqual([f.encoding for f in findings], [None])



class StreamedNonEnglishTextTest(unittest.TestCase):
    """A streamed batch of text in another script is decoded as one stretch per UTF-8 window
    (not as the ASCII pieces between its words): every encoded form of a secret written in it
    is still found, at its place, as in the buffered body."""

    PROSE = {
        "ru": "Сначала прочитайте код, затем предложите изменения. ",
        "zh": "请先阅读代码，然后提出修改建议；注意不要破坏现有的接口。",
        "ja": "まずコードを読んでから、変更案を出してください。",
    }

    def test_encoded_secrets_in_prose_of_other_scripts(self) -> None:
        data = SECRET.encode()
        forms = {
            "base64": base64.b64encode(data).decode(),
            "hex": data.hex(),
            "url": "".join(f"%{b:02X}" for b in data),
            "escapes": "".join(f"\\u{ord(c):04x}" for c in SECRET),
            "fullwidth": "".join(chr(ord(c) + 0xFEE0) for c in SECRET),
        }
        for lang, prose in self.PROSE.items():
            for label, form in forms.items():
                text = prose * 400 + form + prose * 400
                body = text.encode()
                with self.subTest(lang, form=label):
                    streamed = SCANNER.scan_batch(body, deep=True)
                    self.assertEqual(disguises.names(streamed), {"API_SECRET"})
                    self.assertEqual(disguises.names(scan(body)), {"API_SECRET"})
                    # At its place: over the form (a lookalike letter right after it, as Russian
                    # "С" after a hex run, folds onto it and may widen the span).
                    start, end = len((prose * 400).encode()), len((prose * 400 + form).encode())
                    spans = [(f.start, f.end) for f in streamed if f.secret_name == "API_SECRET"]
                    self.assertTrue(any(s <= start + 2 and end - 2 <= e <= end + 4 for s, e in spans), spans)

    def test_prose_of_other_scripts_streams_clean(self) -> None:
        for lang, prose in self.PROSE.items():
            with self.subTest(lang):
                self.assertEqual(SCANNER.scan_batch((prose * 3000).encode(), deep=True), [])


if __name__ == "__main__":
    unittest.main()
