"""Two searches of a held body's scan made cheaper, each pinned to the search it replaces.

* The split check searched the fields' concatenation for the bottle's secrets in the same
  windows as for token formats (``SPLIT_REACH`` either side of every boundary): for a JSON body
  of many fields, the whole text a second time. A form that crosses a boundary lies within its
  own length of it: only those narrow pieces are searched now (``Engine._known_around``), in the
  order the wide windows gave them (the first of a secret's hits is the one reported).
* The deep-only forms (base85, ascii85, base32hex, ROT47, every other character, ...) were
  searched over the whole of a large text; those without a blank or line break are searched now
  only in the text's long runs without one (``known._search_runs``): prose and code are mostly
  short runs between blanks.

Each is checked against the old search on the same texts, secrets at every edge."""

from __future__ import annotations

import base64
import bisect
import json
import random
import unittest

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp import engine as engine_module
from bot_bottle.sidecar.dlp import known as known_module
from bot_bottle.sidecar.dlp.known import KnownSecrets

SECRETS = {"DB_PASSWORD": "Vx9!kQ2#mW7pL4zR", "ROUTE": "rt_Gh7Kd92LmQpXz4Rt8VbN3sWc6YaE1uJf0Tq",
           "SPACED": "open sesame 42 door"}
SCANNER = Scanner(SECRETS)
KNOWN: KnownSecrets = SCANNER.known


def old_known_around(joined: str, boundaries: list[int]) -> list[tuple[int, int, str, str | None]]:
    """The bottle's secrets as the split check searched them before: in the wide windows."""
    out = []
    for start, end in engine_module._windows_around(boundaries, engine_module.SPLIT_REACH, len(joined)):
        for k in KNOWN.find(joined[start:end]):
            out.append((k.start + start, k.end + start, k.secret_name, k.encoding))
    return out


def crossing(hits: list[tuple[int, int, str, str | None]], starts: list[int]) -> list[tuple[int, int, str, str | None]]:
    """The hits that cross a field boundary (the split check keeps only those), in order."""
    return [h for h in hits if bisect.bisect_right(starts, h[0]) != bisect.bisect_right(starts, h[1] - 1)]


def forms_of(value: str) -> list[str]:
    data = value.encode()
    return [value, data.hex(), base64.b64encode(data).decode(), json.dumps(value, ensure_ascii=True)[1:-1],
            "".join(f"\\u{ord(c):04x}" if not c.isalnum() else c for c in value), value[::-1],
            base64.b85encode(data).decode(), base64.a85encode(data).decode()]


class KnownAroundBoundariesTest(unittest.TestCase):
    def fields(self, rng: random.Random) -> list[str]:
        words = ["alpha", "beta", "x = 1", "%41", "\\n", "caf\u00e9", ""]
        count = rng.choice([2, 5, 40])
        out = [" ".join(rng.choice(words) for _ in range(rng.choice([0, 2, 30, 900]))) for _ in range(count)]
        for _ in range(rng.randint(1, 4)):
            form = rng.choice(forms_of(rng.choice(list(SECRETS.values()))))
            i = rng.randrange(count - 1)
            cut = rng.randint(1, len(form) - 1)
            out[i] += form[:cut]
            out[i + 1] = form[cut:] + out[i + 1]
        return out

    def test_same_hits_in_the_same_order_as_the_wide_windows(self) -> None:
        rng = random.Random(13)
        checked = 0
        for _ in range(300):
            texts = self.fields(rng)
            joined, starts = engine_module._join(texts, "")
            new = [(h.start, h.end, h.secret_name, h.encoding)
                   for h in SCANNER.engine._known_around(joined, starts[1:])]
            old = old_known_around(joined, starts[1:])
            self.assertEqual(crossing(new, starts), crossing(old, starts))
            checked += bool(crossing(old, starts))
        self.assertGreater(checked, 200)

    def test_split_secret_found_at_every_cut(self) -> None:
        value = SECRETS["DB_PASSWORD"]
        for form in forms_of(value)[:5]:
            for cut in range(1, len(form)):
                body = json.dumps({"a": "x" * 5000 + form[:cut], "b": form[cut:] + "y" * 5000, "c": "z"}).encode()
                findings = SCANNER.scan_request("POST", "https://api.example/", {"content-type": "application/json"}, body)
                with self.subTest(form=form, cut=cut):
                    self.assertIn("DB_PASSWORD", {f.secret_name for f in findings})

    def test_reach_covers_every_form(self) -> None:
        longest = KNOWN.longest_form()
        for group in KNOWN._needles:
            for needle, _ in group.forms:
                self.assertLessEqual(len(needle.text), longest)
        for form in KNOWN._escaped:
            self.assertLessEqual(len(form.widest), longest)


class SearchRunsTest(unittest.TestCase):
    """``_search_runs`` finds what ``_search`` over the whole text finds."""

    def deep_forms(self) -> list[str]:
        return [n.text for g in KNOWN._base85_needles for n, _ in g.forms]

    def text(self, rng: random.Random, forms: list[str]) -> str:
        words = ["the", "quick", "brown", "fox", "self.handler", "user_id,", "0.1234", "\u4e2d",
                 "x", "\n", "\t", "a" * 9, "b" * 10, "longer_identifier_name"]
        parts: list[str] = []
        size = 0
        while size < known_module.GATE_MIN_TEXT + 5000:
            if rng.random() < 0.01:
                form = rng.choice(forms)
                glue = rng.choice(["", " ", "\n", "x", "\x00", "\t"])
                parts.append(glue + form + rng.choice(["", " ", "\n", "Q", "\x00"]))
            else:
                parts.append(rng.choice(words) + rng.choice([" ", "", "\n"]))
            size += len(parts[-1])
        return "".join(parts)

    def test_same_hits_as_the_whole_text_search(self) -> None:
        rng = random.Random(7)
        forms = self.deep_forms()
        self.assertTrue(any(any(ch in known_module._BREAKS for ch in f) for f in forms))  # both kinds
        for _ in range(12):
            text = self.text(rng, forms)
            for needles in (KNOWN._base85_needles, KNOWN._echo_needles):
                whole = known_module._search(needles, text, text)
                runs = known_module._search_runs(needles, text)
                self.assertEqual(sorted((h.start, h.end, h.secret_name, h.encoding) for h in runs),
                                 sorted((h.start, h.end, h.secret_name, h.encoding) for h in whole))
                self.assertTrue(whole)

    def test_binary_data_searched_whole_alike(self) -> None:
        # Random bytes are mostly long runs: searched whole, with the same hits.
        rng = random.Random(5)
        forms = self.deep_forms()
        data = rng.randbytes(known_module.GATE_MIN_TEXT * 3).decode("latin-1")
        at = [rng.randrange(len(data)) for _ in range(20)]
        text = data
        for a in sorted(at, reverse=True):
            text = text[:a] + rng.choice(forms) + text[a:]
        whole = known_module._search(KNOWN._base85_needles, text, text)
        runs = known_module._search_runs(KNOWN._base85_needles, text)
        self.assertEqual(sorted((h.start, h.end, h.secret_name) for h in runs),
                         sorted((h.start, h.end, h.secret_name) for h in whole))
        self.assertGreaterEqual(len(whole), 20)

    def test_form_at_the_very_edges(self) -> None:
        form = next(f for f in self.deep_forms() if not any(ch in known_module._BREAKS for ch in f))
        pad = "word " * (known_module.GATE_MIN_TEXT // 5 + 10)
        for text in (form + pad, pad + form, pad + form + " " + pad, form):
            found = {(h.start, h.end) for h in KNOWN.find_base85(text)}
            at = text.index(form)
            self.assertIn((at, at + len(form)), found)


if __name__ == "__main__":
    unittest.main()
