"""The prefilter of streamed batches (``Scanner.scan_batch``): it must never lose a hit the full
scan of the same batch reports, for any detector family or secret form, anywhere in binary data,
and a value cut by a batch boundary is still found before any byte of it leaves."""

from __future__ import annotations

import base64
import random
import unittest
from urllib.parse import quote

from bot_bottle.sidecar.dlp import Scanner, ScanOptions
from bot_bottle.sidecar.dlp.encodings import url_full
from bot_bottle.sidecar.dlp.prefilter import Prefilter
from bot_bottle.sidecar.dlp.stream import StreamScan
from bot_bottle.sidecar.dlp.tokens import DETECTORS, RUN, RUN_CHARS
from tests.unit import test_dlp_fakes as fakes
from tests.unit import test_dlp_tokens as token_tests

SECRET = "Zq8v/R2mK+7xW4nB9=tL3p Y6c"  # characters that percent-encoding changes
SCANNER = Scanner({"DB_PASSWORD": SECRET})


def token_samples() -> list[tuple[str, str]]:
    """(detector id, text) for every detector family: the token tests' positives in each of
    their contexts, plus the families those tests build by hand."""
    out: list[tuple[str, str]] = []
    for case in vars(token_tests).values():
        # The token tests' per-detector classes: a ``detector`` id and ``positives(rng)``.
        if isinstance(case, type) and isinstance(getattr(case, "detector", None), str) and case.detector \
                and hasattr(case, "positives"):
            rng = random.Random(case.detector)
            for token in case().positives(rng):
                for context in token_tests.CONTEXTS:
                    out.append((case.detector, context.format(token)))
    rng = random.Random(7)
    key = base64.b64encode(rng.randbytes(32)).decode()
    strong = "Xk9#mP2$vL7q"
    out += [
        ("azure-storage-key", fakes.azure_connection_string(rng)),
        ("azure-storage-key", f"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=R;SharedAccessKey={key}"),
        ("azure-sas-token", fakes.azure_sas_url(rng)),
        ("private-key", "config:\n" + fakes.private_key(rng, "RSA ")),
        ("private-key", "config:\n" + fakes.private_key(rng, "")),
        ("private-key", '{"key": "' + fakes.private_key(rng).replace("\n", "\\n") + '"}'),
        ("gcp-service-account-key", fakes.gcp_service_account(rng)),
        ("jwt", fakes.jwt(rng, "none")),
        ("generic-secret-assignment", f'DB_PASSWORD="{strong}"'),
        ("generic-secret-assignment", f"passwd={strong}"),
        ("generic-secret-assignment", f"password: '{strong}'"),
        ("generic-secret-assignment", f'client_secret = "{fakes.rand(rng, 32)}"'),
        ("generic-secret-assignment", f"export AUTH_TOKEN={fakes.rand(rng, 40)}"),
        ("generic-secret-assignment", f"MASTER_KEY := '{fakes.rand(rng, 24)}'"),
        ("generic-secret-assignment", f'"apiKey"\t: "{fakes.rand(rng, 32)}"'),
        ("generic-secret-assignment", f'secret => "{fakes.rand(rng, 20)}"'),
        ("generic-secret-assignment", f'API_KEY="{strong}"'),
        ("aws-secret-access-key", f"[default]\naws_secret_access_key = {fakes.aws_secret(rng)}\n"),
        ("aws-secret-access-key", f"id={fakes.aws_key_id(rng)}\nkey={fakes.aws_secret(rng)}\n"),
    ]
    return out


def secret_forms() -> list[tuple[str | None, str]]:
    """(encoding, text) for every form of SECRET the known-secret search covers."""
    data = SECRET.encode()
    out: list[tuple[str | None, str]] = [
        (None, SECRET), ("reversed", SECRET[::-1]), ("hex", data.hex()), ("hex", data.hex().upper()),
        ("hex", "".join(c.upper() if i % 3 else c for i, c in enumerate(data.hex()))),
        ("url", url_full(data)), ("url", url_full(data).upper()), ("url", quote(SECRET, safe="")),
    ]
    for prefix in (b"", b"u", b"us"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            out.append(("base64", encode(prefix + data + b"!tail").decode()))
    return out


def embed(text: str, rng: random.Random, before: int = 300_000, after: int = 200_000) -> tuple[bytes, int]:
    """``text`` (UTF-8) between random bytes; the bytes and where ``text`` starts."""
    head = rng.randbytes(before) + b"\n"
    return head + text.encode("utf-8") + b"\n" + rng.randbytes(after), len(head)


def summary(findings) -> list[tuple[str, str | None, str | None, int, int]]:
    return sorted((f.detector, f.secret_name or "", f.encoding or "", f.start, f.end) for f in findings)


class CatalogueTest(unittest.TestCase):
    def test_every_detector_is_covered_by_a_run_or_a_keyword(self) -> None:
        for det in DETECTORS:
            with self.subTest(detector=det.id):
                self.assertTrue(det.run_min >= RUN or det.probes, "the prefilter could not vouch for it")

    def test_prefilter_is_off_when_it_cannot_vouch(self) -> None:
        scanner = Scanner({"DB_PASSWORD": SECRET}, ScanOptions(entropy=True))
        self.assertIsNone(scanner._prefilter().windows(random.Random(1).randbytes(100_000)))

    def test_run_min_holds_for_each_detectors_samples(self) -> None:
        # The declared minimum is a property of the format: check it on real samples.
        by_id = {}
        for det in DETECTORS:
            if det.run_min:
                by_id[det.id] = min(by_id.get(det.id, det.run_min), det.run_min)
        for detector, text in token_samples():
            if detector not in by_id or detector == "private-key":
                continue
            for finding in SCANNER.scan_text(text):
                if finding.detector != detector:
                    continue
                longest = run = 0
                for ch in text[max(0, finding.start - 16) : finding.end]:
                    run = run + 1 if ch in RUN_CHARS else 0
                    longest = max(longest, run)
                with self.subTest(detector=detector, text=text[:40]):
                    self.assertGreaterEqual(longest, by_id[detector])


class SameFindingsTest(unittest.TestCase):
    """``scan_batch`` reports exactly what ``scan_text`` of the whole batch reports."""

    def assert_same(self, data: bytes, scanner: Scanner = SCANNER) -> list:
        full = scanner.scan_text(data, "body", deep=False)
        fast = scanner.scan_batch(data, "body")
        self.assertEqual(summary(fast), summary(full))
        return fast

    def test_each_detector_family_passes_the_prefilter(self) -> None:
        rng = random.Random(11)
        families = set()
        for detector, text in token_samples():
            with self.subTest(detector=detector, text=text[:40]):
                data, at = embed(text, rng)
                windows = SCANNER._prefilter().windows(data)
                self.assertIsNotNone(windows)
                self.assertTrue(any(s <= at and at + len(text) <= e for s, e in windows or []))
                found = self.assert_same(data)
                self.assertIn(detector, [f.detector for f in found])
                families.add(detector)
        self.assertGreaterEqual(families, {d.id for d in DETECTORS})

    def test_every_form_of_a_known_secret_passes_the_prefilter(self) -> None:
        rng = random.Random(12)
        for encoding, text in secret_forms():
            with self.subTest(encoding=encoding, text=text[:12]):
                data, _ = embed(f"x={text};", rng)
                found = self.assert_same(data)
                self.assertIn(("DB_PASSWORD", encoding),
                              [(f.secret_name, f.encoding) for f in found])

    def test_random_data_costs_no_window_scan_and_finds_nothing(self) -> None:
        for seed in range(4):
            data = random.Random(seed).randbytes(1 << 20)
            windows = SCANNER._prefilter().windows(data)
            self.assertIsNotNone(windows)
            self.assertLess(sum(e - s for s, e in windows or []), len(data) // 4)
            self.assert_same(data)

    def test_text_full_of_keywords_is_scanned_whole(self) -> None:
        line = b'{"key": "value", "token_count": 5, "secret_name": "x"}\n'
        data = line * 20_000
        self.assertIsNone(SCANNER._prefilter().windows(data))
        self.assert_same(data + b'API_KEY="' + fakes.rand(random.Random(3), 32).encode() + b'"\n')

    def test_prose_gives_up_early_and_is_scanned_whole(self) -> None:
        # Words of keyword letters before blanks everywhere: too many candidates to confirm.
        data = b"the other ones are not a secret to anyone: see the notes on tokens\n" * 16_000
        self.assertIsNone(SCANNER._prefilter().windows(data))
        self.assert_same(data + b"passwd=" + b"Xk9#mP2$vL7q\n")

    def test_many_hits_near_each_other_and_at_the_edges(self) -> None:
        rng = random.Random(13)
        samples = [text for _, text in token_samples()][::7] + [SECRET, SECRET.encode().hex()]
        parts = [samples[0].encode()]  # a hit at offset 0
        for text in samples[1:]:
            parts.append(rng.randbytes(rng.randrange(0, 40_000)))
            parts.append(text.encode())
        data = b"".join(parts) + SECRET.encode()  # and one at the very end
        self.assert_same(data)

    def test_without_known_secrets_or_tokens(self) -> None:
        data, _ = embed(f"{SECRET} {fakes.github(random.Random(4))}", random.Random(14))
        for options in (ScanOptions(tokens=False), ScanOptions(known_secrets=False)):
            with self.subTest(options=options):
                self.assert_same(data, Scanner({"DB_PASSWORD": SECRET}, options))

    def test_non_latin1_secret_is_searched_in_its_utf8_bytes(self) -> None:
        scanner = Scanner({"PIN": "пароль-Zq8vR2mK"})
        data, _ = embed("x=пароль-Zq8vR2mK", random.Random(15))
        found = self.assert_same(data, scanner)
        self.assertIn("PIN", [f.secret_name for f in found])


class BoundaryTest(unittest.TestCase):
    def stream(self) -> StreamScan:
        return StreamScan(scan_batch=lambda batch: SCANNER.scan_batch(batch, "body"),
                          scan_whole=lambda body: SCANNER.scan_request("POST", "", [], body),
                          batch=256 * 1024, overlap=4096)

    def test_value_cut_by_a_batch_boundary_is_found_before_it_leaves(self) -> None:
        rng = random.Random(21)
        for text in (SECRET, fakes.github(rng), fakes.aws_key_id(rng), f'API_KEY="{fakes.rand(rng, 32)}"',
                     base64.b64encode(b"u" + SECRET.encode()).decode()):
            for cut in (1, len(text) // 2, len(text) - 1):
                with self.subTest(text=text[:10], cut=cut):
                    stream = self.stream()
                    start = 256 * 1024 - cut  # the first batch ends inside the value
                    data = rng.randbytes(start - 1) + b"\n" + text.encode() + b"\n" + rng.randbytes(300_000)
                    out = bytearray()
                    for i in range(0, len(data), 65536):
                        out += stream.feed(data[i : i + 65536])
                    out += stream.finish()
                    self.assertTrue(stream.blocked)
                    self.assertLessEqual(len(out), start)


class PrefilterUnitTest(unittest.TestCase):
    def test_windows_are_disjoint_sorted_and_inside_the_data(self) -> None:
        rng = random.Random(31)
        data = b"".join(rng.randbytes(200_000) + b"\ntoken=" + fakes.rand(rng, 20).encode() for _ in range(5))
        windows = Prefilter(SCANNER.tokens, SCANNER.known, use_tokens=True, use_known=True,
                            entropy=False).windows(data)
        self.assertIsNotNone(windows)
        previous_end = -1
        for start, end in windows or []:
            self.assertLess(previous_end, start)
            self.assertTrue(0 <= start < end <= len(data))
            previous_end = end

    def test_nothing_to_search_finds_no_window(self) -> None:
        prefilter = Prefilter(SCANNER.tokens, SCANNER.known, use_tokens=False, use_known=False, entropy=False)
        self.assertEqual(prefilter.windows(b"password=" + SECRET.encode()), [])


if __name__ == "__main__":
    unittest.main()
