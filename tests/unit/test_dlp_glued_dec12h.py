"""Well-known tokens glued to the characters around them.

The token detectors take a value only when it stands apart, which keeps them off identifiers and
encoded blobs. One character glued before a token (``xghp_...``, ``rel-sk-ant-...``) or after it
(``ghp_..._``) hid it, and the receiver strips that character as easily as the agent adds it.
A glued token is now found in every place the proxy reads: a held body, the query, a header, a
streamed body cut at a batch seam, and inside base64, hex and percent-encoding.

Look-alikes still pass: base64url blobs that spell an anchor, kebab-case and snake-case names,
short glued prefixes, a three-letter "sk-" inside a blob, a lone AWS access key id.
"""

from __future__ import annotations

import base64
import json
import random
import string
import unittest
from urllib.parse import quote

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.stream import StreamScan
from tests.unit import test_dlp_fakes as fakes

RNG = random.Random(1212)
SCANNER = Scanner()

GHP = fakes.github(RNG)
ANT = fakes.anthropic(RNG)
TOKENS: dict[str, tuple[str, str]] = {
    "ghp": (GHP, "github-token"),
    "gho": (fakes.github(RNG, "o"), "github-token"),
    "ghp lower": ("ghp_" + fakes.rand(RNG, 36, string.ascii_lowercase + string.digits), "github-token"),
    "github_pat": (fakes.github_pat(RNG), "github-token"),
    "glpat": (fakes.gitlab(RNG), "gitlab-token"),
    "xoxb": (fakes.slack_bot(RNG), "slack-token"),
    "stripe": (fakes.stripe(RNG), "stripe-secret-key"),
    "stripe restricted": (fakes.stripe(RNG, "rk_live_"), "stripe-secret-key"),
    "anthropic": (ANT, "anthropic-api-key"),
    "openai project": (fakes.openai(RNG), "openai-api-key"),
    "openai legacy": (fakes.openai(RNG, project=False), "openai-api-key"),
    "npm": ("npm_" + fakes.rand(RNG, 36), "npm-token"),
    "google api": ("AIza" + fakes.rand(RNG, 35, fakes.URLSAFE), "gcp-api-key"),
    "google oauth": ("ya29." + fakes.rand(RNG, 120, fakes.URLSAFE), "google-oauth-token"),
    "google client secret": ("GOCSPX-" + fakes.rand(RNG, 28), "google-oauth-client-secret"),
    "pypi": ("pypi-AgE" + fakes.rand(RNG, 70, fakes.URLSAFE), "pypi-token"),
}
# Formats whose body has a fixed length: any character may be glued after it.
FIXED = ("npm", "google api", "google client secret")


def jwt() -> str:
    header = fakes.b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = fakes.b64url(json.dumps({"sub": "agent", "iat": 1765000000}).encode())
    return f"{header}.{payload}.{fakes.rand(RNG, 43, fakes.URLSAFE)}"


JWT = jwt()


def detectors(text: str | bytes, *, deep: bool = False) -> list[str]:
    return sorted({f.detector for f in SCANNER.scan_text(text, deep=deep)})


class GluedBeforeTest(unittest.TestCase):
    def test_a_letter_before_each_format(self) -> None:
        for name, (token, detector) in TOKENS.items():
            with self.subTest(name):
                self.assertIn(detector, detectors("x" + token))

    def test_a_digit_before_each_format(self) -> None:
        for name, (token, detector) in TOKENS.items():
            with self.subTest(name):
                self.assertIn(detector, detectors("note 1" + token + " end"))

    def test_glued_inside_an_assignment_and_a_json_string(self) -> None:
        for name, (token, detector) in TOKENS.items():
            with self.subTest(name):
                self.assertIn(detector, detectors("data=x" + token))
                self.assertIn(detector, detectors('{"a":"x' + token + '"}'))

    def test_a_kebab_prefix_before_an_anthropic_key(self) -> None:
        self.assertEqual(detectors("rel-" + ANT), ["anthropic-api-key"])
        self.assertEqual(detectors("e" + ANT), ["anthropic-api-key"])

    def test_a_jwt_with_a_letter_before_it(self) -> None:
        self.assertEqual(detectors("Bearer:x" + JWT), ["jwt"])

    def test_the_finding_covers_the_token_and_redaction_removes_it(self) -> None:
        text = "id: x" + GHP + " ok"
        finding = SCANNER.scan_text(text)[0]
        self.assertEqual(text[finding.start:finding.end], GHP)
        self.assertNotIn(GHP, SCANNER.redact_text(text).content)


class GluedAfterTest(unittest.TestCase):
    def test_an_underscore_after_each_format(self) -> None:
        for name, (token, detector) in TOKENS.items():
            with self.subTest(name):
                self.assertIn(detector, detectors(token + "_"))

    def test_a_letter_after_a_fixed_length_format(self) -> None:
        for name in FIXED:
            token, detector = TOKENS[name]
            with self.subTest(name):
                self.assertIn(detector, detectors(token + "x"))
                self.assertIn(detector, detectors("x" + token + "x"))

    def test_an_azure_account_key_with_a_letter_after_it(self) -> None:
        key = fakes.rand(RNG, 86, fakes.B64)
        text = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={key}==x;EndpointSuffix=core.windows.net"
        self.assertIn("azure-storage-key", detectors(text))


class GluedAwsPairTest(unittest.TestCase):
    def test_a_glued_pair_is_a_credential(self) -> None:
        key_id, secret = fakes.aws_key_id(RNG), fakes.aws_secret(RNG)
        self.assertIn("aws-secret-access-key", detectors(f"id=x{key_id}\nsecret=x{secret}\n"))
        self.assertIn("aws-secret-access-key", detectors(f"{key_id}x {secret}y"))

    def test_a_key_id_glued_to_an_upper_case_letter_alone_is_not(self) -> None:
        # An upper-case word that spells AKIA by chance; one glued to a lower-case letter is read
        # (test_dlp_tokens_dec13j).
        self.assertEqual(detectors("M" + fakes.aws_key_id(RNG) + " ok"), [])


class GluedInRequestsTest(unittest.TestCase):
    def found(self, **request: object) -> set[str]:
        findings = SCANNER.scan_request(str(request.get("method", "POST")), str(request.get("url", "https://x.test/")),
                                        request.get("headers", []),  # type: ignore[arg-type]
                                        request.get("body"))  # type: ignore[arg-type]
        return {f.detector for f in findings}

    def test_a_held_json_body(self) -> None:
        body = json.dumps({"note": "x" + GHP, "n": 1}).encode()
        self.assertIn("github-token", self.found(body=body, headers=[("Content-Type", "application/json")]))

    def test_a_form_body(self) -> None:
        self.assertIn("anthropic-api-key", self.found(body=("q=rel-" + ANT).encode(),
                                                       headers=[("Content-Type", "application/x-www-form-urlencoded")]))

    def test_the_query(self) -> None:
        self.assertIn("github-token", self.found(method="GET", url=f"https://x.test/a?q=x{GHP}&n=1"))
        self.assertIn("github-token", self.found(method="GET", url=f"https://x.test/a?q={GHP}_"))

    def test_the_path(self) -> None:
        self.assertIn("anthropic-api-key", self.found(method="GET", url=f"https://x.test/rel-{ANT}/x"))

    def test_a_header(self) -> None:
        self.assertIn("github-token", self.found(method="GET", headers=[("X-Note", "x" + GHP)]))

    def test_base64_of_a_glued_token(self) -> None:
        encoded = base64.b64encode(("x" + GHP + "_").encode()).decode()
        self.assertIn("github-token", self.found(body=f"data={encoded}".encode()))
        self.assertIn("github-token", detectors(encoded, deep=True))

    def test_hex_of_a_glued_token(self) -> None:
        self.assertIn("anthropic-api-key", detectors(("rel-" + ANT).encode().hex(), deep=True))

    def test_percent_encoding_of_a_glued_token(self) -> None:
        encoded = "".join(f"%{b:02X}" for b in ("x" + GHP).encode())
        self.assertIn("github-token", detectors(encoded, deep=True))
        self.assertIn("github-token", detectors(quote("a=b&c=x" + GHP, safe=""), deep=True))


class GluedInStreamsTest(unittest.TestCase):
    def stream(self, body: bytes, batch: int, overlap: int) -> StreamScan:
        scan = StreamScan(
            scan_batch=lambda data: SCANNER.scan_batch(data, "body", deep=True),
            scan_whole=lambda whole: SCANNER.scan_request("POST", "", [], whole),
            batch=batch, overlap=overlap, sniff_json=False,
        )
        for i in range(0, len(body), 4096):
            scan.feed(body[i:i + 4096])
        scan.finish()
        return scan

    def test_a_glued_token_cut_by_a_batch_seam(self) -> None:
        filler = b"lorem ipsum dolor sit amet 0123456789\n" * 3000
        for cut in (1, 2, 20, len(GHP)):
            with self.subTest(cut):
                at = 64 * 1024 - cut
                body = filler[:at] + b"x" + GHP.encode() + b"_" + filler[at:]
                scan = self.stream(body, batch=64 * 1024, overlap=4096)
                self.assertEqual({f.detector for f in scan.findings}, {"github-token"})

    def test_a_batch_of_binary_data_with_a_glued_token(self) -> None:
        noise = random.Random(3).randbytes(300_000).replace(b"_", b" ")
        data = noise[:150_000] + b"rel-" + ANT.encode() + noise[150_000:]
        self.assertIn("anthropic-api-key", {f.detector for f in SCANNER.scan_batch(data, "body", deep=True)})


class LookAlikeTest(unittest.TestCase):
    def test_a_base64url_blob_that_spells_an_anchor(self) -> None:
        rnd = random.Random(7)
        alphabet = fakes.URLSAFE
        for token, _ in TOKENS.values():
            blob = "".join(rnd.choice(alphabet) for _ in range(200)) + token
            blob += "".join(rnd.choice(alphabet) for _ in range(80))
            with self.subTest(token[:8]):
                self.assertEqual(detectors(f'data = "{blob}"\n'), [])
                self.assertEqual(detectors(blob), [])

    def test_a_standard_base64_blob_that_spells_an_anchor(self) -> None:
        rnd = random.Random(8)
        blob = "".join(rnd.choice(fakes.B64) for _ in range(300))
        text = blob[:150] + TOKENS["google api"][0] + blob[150:]
        self.assertEqual(detectors(text), [])

    def test_random_base64url_blobs(self) -> None:
        rnd = random.Random(9)
        for _ in range(300):
            blob = "".join(rnd.choice(fakes.URLSAFE) for _ in range(400))
            self.assertEqual(detectors(blob), [], blob)

    def test_a_short_sk_in_a_blob(self) -> None:
        # "sk-" glued needs a longer mark: three characters a base64url value spells by chance.
        text = "id=Qz9" + "sk-" + fakes.rand(RNG, 48) + "\n"
        self.assertEqual(detectors(text), [])
        self.assertEqual(detectors("Qz9sk-" + fakes.rand(RNG, 30) + "_" + fakes.rand(RNG, 30)), [])

    def test_kebab_and_snake_names(self) -> None:
        text = ("task-ant-colony-simulation-with-pheromones-and-more-words\n"
                "desk-ant-" + "x" * 40 + "\n"
                "mask-proj-layout-for-the-dashboard-with-extra-words-and-more\n"
                "echo $npm_package_version xnpm_config_cache_folder_for_the_build_of_it\n"
                "my_npm_package_name_for_the_release_of_the_build_tools_now\n"
                "bigh_" + "a" * 40 + "\n"
                ".fooxoxb-layout-grid-column-template-areas-2024-header-footer { }\n"
                "const enableGoogleAIzaIntegrationForTheWholeAppAndMoreOfIt = 1\n")
        self.assertEqual(detectors(text), [])

    def test_short_glued_prefixes_in_tests(self) -> None:
        text = 'assert not found("xghp_abc")\nname = "rel-sk-ant-short"\nv = "aAIzaSy"\nw = "xnpm_abc"\n'
        self.assertEqual(detectors(text), [])

    def test_uuids_hashes_and_a_lockfile(self) -> None:
        rnd = random.Random(10)
        integrity = base64.b64encode(rnd.randbytes(64)).decode()
        text = (
            '"node_modules/left-pad": {"version": "1.3.0", "resolved": '
            '"https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz", '
            f'"integrity": "sha512-{integrity}"}}\n'
            f"uuid = {'-'.join(rnd.randbytes(n).hex() for n in (4, 2, 2, 2, 6))}\n"
            f"sha256 = {rnd.randbytes(32).hex()}\n"
        )
        self.assertEqual(detectors(text, deep=True), [])

    def test_a_hash_after_a_word_ending_in_an_anchor(self) -> None:
        rnd = random.Random(11)
        text = f"cache/laughs_{rnd.randbytes(20).hex()}.bin\nhighs_{rnd.randbytes(32).hex()}\n"
        self.assertEqual(detectors(text), [])

    def test_minified_code(self) -> None:
        text = ("!function(e){var t=e.task-1,ghp_=e.ghp_;return t}(window);"
                ".btn-task-proj-x{color:#fff}.mask-ant-icon{width:1px}" * 20)
        self.assertEqual(detectors(text, deep=True), [])

    def test_a_jwt_payload_stays_one_jwt(self) -> None:
        self.assertEqual([f.detector for f in SCANNER.scan_text("t=" + JWT)], ["jwt"])


if __name__ == "__main__":
    unittest.main()
