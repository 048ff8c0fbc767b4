"""Token-format detectors: each fires on its format (in the contexts it travels in) and stays quiet
on look-alikes and on the random-but-benign strings code is full of."""

from __future__ import annotations

import base64
import random
import string
import unittest

from bot_bottle.sidecar.dlp import DETECTOR_IDS, Scanner
from bot_bottle.sidecar.dlp.tokens import DETECTORS, TokenScanner, char_classes, shannon, strong_secret_value
from tests.unit import test_dlp_fakes as fakes

SCANNER = Scanner()

# Ways a token travels: bare, quoted in code, in JSON, in a header line, in a URL, in an env file.
CONTEXTS = (
    "{}",
    'value = "{}"\n',
    '{{"credential": "{}", "n": 1}}',
    "Authorization: Bearer {}\r\n",
    "https://example.test/cb?code=abc&t={}&x=1",
    "export SOME_VAR={}\n",
    "  - {}\n",
    "<input value='{}'>",
)


def detectors_in(text: str) -> list[str]:
    return [f.detector for f in SCANNER.scan_text(text)]


class DetectorCase(unittest.TestCase):
    detector = ""

    def positives(self, rng: random.Random) -> list[str]:  # pragma: no cover - overridden
        return []

    def negatives(self) -> list[str]:
        return []

    def assert_found(self, text: str, detector: str | None = None) -> None:
        wanted = detector or self.detector
        found = SCANNER.scan_text(text)
        self.assertIn(wanted, [f.detector for f in found], f"{wanted} not found in a sample")

    def assert_not_found(self, text: str) -> None:
        found = SCANNER.scan_text(text)
        self.assertEqual([f.detector for f in found], [], "a benign sample was flagged")

    def test_positive_in_every_context(self) -> None:
        rng = random.Random(hash(self.detector) & 0xFFFF)
        for token in self.positives(rng):
            for context in CONTEXTS:
                with self.subTest(context=context):
                    text = context.format(token)
                    self.assert_found(text)
                    finding = next(f for f in SCANNER.scan_text(text) if f.detector == self.detector)
                    # the span covers the token (some detectors report a value inside it)
                    self.assertTrue(token in text[finding.start : finding.end] or
                                    text[finding.start : finding.end] in token)

    def test_negatives(self) -> None:
        for text in self.negatives():
            with self.subTest(text=text[:40]):
                self.assertNotIn(self.detector, detectors_in(text))


class AwsAccessKeyTest(DetectorCase):
    detector = "aws-access-key-id"

    def positives(self, rng):
        return [fakes.aws_key_id(rng, p) for p in ("AKIA", "ASIA", "ABIA", "ACCA")]

    def negatives(self):
        return ["AKIAIOSFODNN7EXAMPLE", "AKIA" + "A" * 16, "XAKIA" + "B" * 16, "AKIA1234", "akia" + "ABCDEFGHIJKLMNOP",
                "AKIAABCDEFGHIJKLMNOPQRSTUV"]


class AwsSecretKeyTest(DetectorCase):
    detector = "aws-secret-access-key"

    def positives(self, rng):
        return []

    def test_in_credentials_file(self) -> None:
        rng = random.Random(11)
        for line in ("aws_secret_access_key = {}", "AWS_SECRET_ACCESS_KEY={}", '"SecretAccessKey": "{}"',
                     "aws_secret_key: '{}'", "secret_access_key={}"):
            with self.subTest(line=line):
                self.assert_found("[default]\n" + line.format(fakes.aws_secret(rng)) + "\n")

    def test_after_an_access_key_id(self) -> None:
        rng = random.Random(12)
        text = f"id={fakes.aws_key_id(rng)}\nkey={fakes.aws_secret(rng)}\n"
        self.assert_found(text)
        self.assert_found(text, "aws-access-key-id")

    def test_forty_chars_without_context_is_not_a_key(self) -> None:
        rng = random.Random(13)
        self.assertNotIn(self.detector, detectors_in(f"blob = '{fakes.aws_secret(rng)}'"))
        self.assertNotIn(self.detector, detectors_in(f"commit {fakes.git_sha(rng)}"))

    def test_words_after_the_id_are_not_a_key(self) -> None:
        rng = random.Random(14)
        text = f"{fakes.aws_key_id(rng)} is the key id for the deployment user, rotate it yearly please thanks"
        self.assertNotIn(self.detector, detectors_in(text))


class GcpApiKeyTest(DetectorCase):
    detector = "gcp-api-key"

    def positives(self, rng):
        return [fakes.gcp_api_key(rng) for _ in range(3)]

    def negatives(self):
        return ["AIzaShort", "xAIza" + "b" * 35 + "c", "AIza" + "a" * 35]


class GcpServiceAccountTest(unittest.TestCase):
    def test_service_account_file(self) -> None:
        doc = fakes.gcp_service_account(random.Random(21))
        self.assertIn("gcp-service-account-key", detectors_in(doc))

    def test_plain_pem_is_a_private_key(self) -> None:
        self.assertEqual(detectors_in(fakes.private_key(random.Random(22))), ["private-key"])


class GoogleOauthTest(DetectorCase):
    detector = "google-oauth-token"

    def positives(self, rng):
        return [fakes.google_oauth(rng)]

    def negatives(self):
        return ["ya29.short", "version ya29.1.2"]


class GoogleClientSecretTest(DetectorCase):
    detector = "google-oauth-client-secret"

    def positives(self, rng):
        return [fakes.google_client_secret(rng)]

    def negatives(self):
        return ["GOCSPX-short", "GOCSPX-" + "a" * 40]


class AzureTest(unittest.TestCase):
    def test_connection_string(self) -> None:
        rng = random.Random(31)
        for _ in range(3):
            self.assertIn("azure-storage-key", detectors_in(fakes.azure_connection_string(rng)))

    def test_service_bus_key(self) -> None:
        key = base64.b64encode(random.Random(32).randbytes(32)).decode()
        text = f"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={key}"
        self.assertIn("azure-storage-key", detectors_in(text))

    def test_sas_signature(self) -> None:
        self.assertIn("azure-sas-token", detectors_in(fakes.azure_sas_url(random.Random(33))))

    def test_negatives(self) -> None:
        for text in ("AccountKey=<your key here>", "AccountKey=" + "A" * 86 + "==",
                     "https://x.test/?sig=" + "a" * 50, "design=" + "b" * 60):
            with self.subTest(text=text[:30]):
                self.assertEqual(detectors_in(text), [])


class GithubTest(DetectorCase):
    detector = "github-token"

    def positives(self, rng):
        return [fakes.github(rng, k) for k in "pousr"] + [fakes.github_pat(rng)]

    def negatives(self):
        return ["ghp_short", "ghp_" + "a" * 36, "xghp_" + "aB3" * 12, "ghx_" + "aB3" * 12,
                "github_pat_tooshort", "ghp_" + "aB3" * 12 + "_suffix_more"]


class GitlabTest(DetectorCase):
    detector = "gitlab-token"

    def positives(self, rng):
        return [fakes.gitlab(rng, p) for p in ("glpat-", "gldt-", "glrt-", "glptt-")]

    def negatives(self):
        return ["glpat-short", "glpat-" + "a" * 20]


class SlackTest(DetectorCase):
    detector = "slack-token"

    def positives(self, rng):
        return [fakes.slack_bot(rng, k) for k in "bpa"]

    def negatives(self):
        return ["xoxb-123", "xoxb-not-a-real-token-at-all", "the xoxo-gossip-girl-fan-club"]


class SlackWebhookTest(DetectorCase):
    detector = "slack-webhook"

    def positives(self, rng):
        return [fakes.slack_webhook(rng)]

    def negatives(self):
        return ["https://hooks.slack.com/services/", "see hooks.slack.com/docs for details"]


class StripeTest(DetectorCase):
    detector = "stripe-secret-key"

    def positives(self, rng):
        return [fakes.stripe(rng), fakes.stripe(rng, "rk_live_")]

    def negatives(self):
        return ["sk_live_short", "sk_test_" + "aB3" * 8, "sk_live_" + "a" * 24, "pk_live_" + "aB3" * 8]


class AnthropicTest(DetectorCase):
    detector = "anthropic-api-key"

    def positives(self, rng):
        return [fakes.anthropic(rng)]

    def negatives(self):
        return ["sk-ant-short", "sk-ant-" + "-" * 40]


class OpenAiTest(DetectorCase):
    detector = "openai-api-key"

    def positives(self, rng):
        return [fakes.openai(rng, True), fakes.openai(rng, False)]

    def negatives(self):
        return ["task-" + "aB3" * 12, "disk-usage-monitor-service-account-name-long-enough",
                "sk-" + "a" * 48, "sk-button-primary-large-outline-hover-state-x", "risk-" + "Ab1" * 15]


class NpmTest(DetectorCase):
    detector = "npm-token"

    def positives(self, rng):
        return [fakes.npm(rng)]

    def negatives(self):
        return ["npm_config_cache", "npm_package_version_number_long_enough_here", "npm_" + "a" * 36]


class PypiTest(DetectorCase):
    detector = "pypi-token"

    def positives(self, rng):
        return [fakes.pypi(rng)]

    def negatives(self):
        return ["pypi-AgE", "pypi-simple-index", "pip install pypi-stats"]


class DigitalOceanTest(DetectorCase):
    detector = "digitalocean-token"

    def positives(self, rng):
        return [f"do{kind}_v1_" + fakes.rand(rng, 64, fakes.HEX) for kind in "opr"]

    def negatives(self):
        return ["dop_v1_" + "0" * 64, "dop_v1_short", "dop_v1_" + fakes.HEX * 5]


class ShopifyTest(DetectorCase):
    detector = "shopify-token"

    def positives(self, rng):
        return [f"shp{kind}_" + fakes.rand(rng, 32, fakes.HEX) for kind in ("at", "ss", "ca", "pa")]

    def negatives(self):
        return ["shpat_" + "a" * 32, "def shpat_handler(shop): pass", "shpat_" + "aB3xY9" * 6]


class SendGridTest(DetectorCase):
    detector = "sendgrid-api-key"

    def positives(self, rng):
        return ["SG." + fakes.rand(rng, 22, fakes.URLSAFE) + "." + fakes.rand(rng, 43, fakes.URLSAFE)]

    def negatives(self):
        return ["SG." + "a" * 22 + "." + "b" * 43, "MSG.info.format(name)", "SG.settings.DEFAULT_FROM_EMAIL"]


class PostmanTest(DetectorCase):
    detector = "postman-api-key"

    def positives(self, rng):
        return ["PMAK-" + fakes.rand(rng, 24, fakes.HEX) + "-" + fakes.rand(rng, 34, fakes.HEX)]

    def negatives(self):
        return ["PMAK-" + "0" * 24 + "-" + "0" * 34, "PMAK-short", "PMAK-" + "g" * 59]


class LinearTest(DetectorCase):
    detector = "linear-api-key"

    def positives(self, rng):
        return ["lin_api_" + fakes.rand(rng, 40) for _ in range(2)]

    def negatives(self):
        return ["lin_api_" + "a" * 40, "lin_api_client_configuration_for_the_workspace", "lin_api_short"]


class GrafanaTest(DetectorCase):
    detector = "grafana-token"

    def positives(self, rng):
        return ["glsa_" + fakes.rand(rng, 32) + "_" + fakes.rand(rng, 8, fakes.HEX)]

    def negatives(self):
        return ["glsa_" + "a" * 32 + "_0123abcd", "glsa_service_account_token_name_here_deadbeef"]


class DopplerTest(DetectorCase):
    detector = "doppler-token"

    def positives(self, rng):
        return ["dp.pt." + fakes.rand(rng, 43), "dp.st.prd." + fakes.rand(rng, 40), "dp.ct." + fakes.rand(rng, 43)]

    def negatives(self):
        return ["dp.pt." + "a" * 43, "dp.st.config.value", "udp.st.settings_for_the_default_transport_layer"]


class AtlassianTest(DetectorCase):
    detector = "atlassian-api-token"

    def positives(self, rng):
        return ["ATATT3xFfGF0" + fakes.rand(rng, 170, fakes.URLSAFE) + "=" + fakes.rand(rng, 8, "0123456789ABCDEF")]

    def negatives(self):
        return ["ATATT3xFfGF0", "ATATT3" + "A" * 170 + "=0123ABCD"]


class PrivateKeyTest(unittest.TestCase):
    def test_kinds(self) -> None:
        rng = random.Random(41)
        for kind in ("RSA ", "EC ", "OPENSSH ", "DSA ", "", "ENCRYPTED "):
            with self.subTest(kind=kind):
                text = "config:\n" + fakes.private_key(rng, kind)
                found = SCANNER.scan_text(text)
                self.assertEqual([f.detector for f in found], ["private-key"])
                self.assertEqual(text[found[0].start : found[0].start + 10], "-----BEGIN")
                self.assertTrue(text[: found[0].end].endswith("PRIVATE KEY-----"))

    def test_pgp_block(self) -> None:
        body = "\n".join(base64.b64encode(random.Random(42).randbytes(48)).decode() for _ in range(4))
        text = f"-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: x\n\n{body}\n-----END PGP PRIVATE KEY BLOCK-----"
        self.assertEqual(detectors_in(text), ["private-key"])

    def test_json_escaped_newlines(self) -> None:
        pem = fakes.private_key(random.Random(43)).replace("\n", "\\n")
        self.assertIn("private-key", detectors_in('{"key": "' + pem + '"}'))

    def test_truncated_key_is_still_a_key(self) -> None:
        pem = fakes.private_key(random.Random(44))
        self.assertEqual(detectors_in(pem[: len(pem) // 2]), ["private-key"])

    def test_header_alone_is_not_a_key(self) -> None:
        for text in ('if line.startswith("-----BEGIN RSA PRIVATE KEY-----"):',
                     "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
                     "-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(bytes(64)).decode()):
            with self.subTest(text=text[:30]):
                self.assertEqual(detectors_in(text), [])


class JwtTest(DetectorCase):
    detector = "jwt"

    def positives(self, rng):
        return [fakes.jwt(rng, alg) for alg in ("HS256", "RS256", "ES384")]

    def negatives(self):
        payload = fakes.b64url(b'{"sub": "1"}')
        no_alg = fakes.b64url(b'{"typ": "JWT"}') + "." + payload + "." + "s" * 43
        not_json = "eyJub3QganNvbg." + payload + "." + "s" * 43
        short_sig = fakes.b64url(b'{"alg": "HS256"}') + "." + payload + ".abc"
        return [no_alg, not_json, short_sig, "eyJhbGciOi", "version eyJ.x.y"]

    def test_alg_none_without_signature(self) -> None:
        self.assertIn("jwt", detectors_in(fakes.jwt(random.Random(51), "none")))


class GenericAssignmentTest(unittest.TestCase):
    detector = "generic-secret-assignment"

    def test_positives(self) -> None:
        rng = random.Random(61)
        strong = "Xk9#mP2$vL7q"
        for text in (
            f'DB_PASSWORD="{strong}"', f"password: '{strong}'", f'{{"password": "{strong}"}}',
            f"db.password = `{strong}`", f'client_secret = "{fakes.rand(rng, 32)}"',
            f"API_KEY={fakes.rand(rng, 32)}", f"export AUTH_TOKEN={fakes.rand(rng, 40)}",
            f"  api_key: {fakes.rand(rng, 32)}", f"https://x.test/login?user=a&password={strong}",
            f'"apiKey": "{fakes.rand(rng, 32)}"', f"passwd={strong}", f'secret => "{fakes.rand(rng, 20)}"',
            f'private_key = "{fakes.rand(rng, 48)}"', f'"access_token":"{fakes.rand(rng, 40)}"',
            f"MASTER_KEY := '{fakes.rand(rng, 24)}'", f'ADMIN_PASSWORD="{strong}"',
            f'account_key = "{fakes.rand(rng, 40)}"', f'"storageAccountKey": "{fakes.rand(rng, 40)}"',
            f'apikey: "{fakes.rand(rng, 32)}"', f'"SessionToken": "{fakes.rand(rng, 40)}"',
            f'"refresh-token": "{fakes.rand(rng, 40)}"', f'numberPassword = "{strong}"',
        ):
            with self.subTest(text=text):
                self.assertIn(self.detector, detectors_in(text))

    def test_negatives(self) -> None:
        rng = random.Random(62)
        for text in (
            "password = get_password()", 'password: "changeme"', "token_count = 5", "max_tokens: 4096",
            'secret = os.environ["SECRET"]', "password=self.password", f'"page_token": "{fakes.rand(rng, 40)}"',
            f'"nextPageToken": "{fakes.rand(rng, 40)}"', 'password = "${DB_PASSWORD}"', 'token: "{{ .Values.token }}"',
            'password: "<your password>"', "secret_name: my-app-secret", 'token = "abc"', "password = None",
            'api_key = "your-api-key-here"', f'"key": "{fakes.rand(rng, 30)}"', 'secret: "v1.2.3-rc1"',
            "password = config.DB_PASSWORD_V2", 'token = "https://auth.example.com/token"',
            'password = "**********"', 'csrf_token = "' + fakes.rand(rng, 32) + '"', "secret: true",
            "SECRET_KEY = settings.SECRET_KEY", 'password: "password"', "public_key = 'ssh-ed25519'",
            'tokenizer = "cl100k_base"', 'password = "xxxxxxxxxxxx"', "secret=${{ secrets.TOKEN }}",
            f'csrftoken = "{fakes.rand(rng, 32)}"', f'"pageToken": "{fakes.rand(rng, 32)}"',
            f'"publicKey": "{fakes.rand(rng, 40)}"', f'sort_key = "{fakes.rand(rng, 20)}"',
            f'"keyName": "{fakes.rand(rng, 20)}"', f'MIN_PASSWORD = "{fakes.rand(rng, 12)}"',
            # names, types and references, as real code has them
            "    private_key: SSHPrivateKeyTypes,", "    private_key: PKCS7PrivateKeyTypes,",
            '    private_key: "_RSAPrivateKey",', "    secret: _CookieSecretTypes,",
            "    id_aa_signatureTimeStampToken: SignatureTimeStampToken(),",
            '    AttributeOID.CHALLENGE_PASSWORD: "challengePassword",',
            'var ReactPropTypesSecret="SECRET_DO_NOT_PASS_THIS_OR_YOU_WILL_BE_FIRED";',
            'facebook_api_key="test_facebook_api_key",', 'COOKIE_SECRET = "WebTest.COOKIE_SECRET"',
            "password: CERTIFICATE_PRIVATE_KEY_TYPES", 'token = "my-secret-token-value"',
        ):
            with self.subTest(text=text):
                self.assertNotIn(self.detector, detectors_in(text))

    def test_wordy(self) -> None:
        from bot_bottle.sidecar.dlp.tokens import wordy

        for name in ("SSHPrivateKeyTypes", "SECRET_DO_NOT_SHARE", "test_api_key", "correct-horse-battery"):
            self.assertTrue(wordy(name), name)
        rng = random.Random(63)
        for _ in range(50):
            self.assertFalse(wordy(fakes.rand(rng, 32, fakes.ALNUM.translate(str.maketrans("", "", "0123456789")))))
        self.assertFalse(wordy("abc123"))
        self.assertFalse(wordy("single"))

    def test_strong_value_rules(self) -> None:
        self.assertTrue(strong_secret_value("Xk9#mP2$vL7q"))
        self.assertTrue(strong_secret_value("a8f3k2m9x7c1v5b4n6q0w2e8"))  # long, random, two classes
        self.assertFalse(strong_secret_value("short1A"))
        self.assertFalse(strong_secret_value("alllowercaseletters"))
        self.assertFalse(strong_secret_value("2024-01-01T00:00:00Z"))
        self.assertFalse(strong_secret_value("aaaaaaaaaaaaaaaaaaaa1A"))


class BenignShapesTest(unittest.TestCase):
    """Random-looking but harmless strings that code and traffic are full of."""

    def test_no_token_detector_fires(self) -> None:
        rng = random.Random(71)
        samples = []
        for _ in range(20):
            samples += [
                f"commit {fakes.git_sha(rng)}", f"id: {fakes.uuid4(rng)}",
                f'"integrity": "sha512-{base64.b64encode(rng.randbytes(64)).decode()}"',
                "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n" + rng.randbytes(300)).decode(),
                f"sha256:{fakes.rand(rng, 64, fakes.HEX)}", f"etag: W/\"{fakes.rand(rng, 32, fakes.HEX)}\"",
                base64.b64encode(rng.randbytes(120)).decode(), f"md5={fakes.rand(rng, 32, fakes.HEX)}",
                f"https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz#{fakes.git_sha(rng)}",
                f"trace_id={fakes.rand(rng, 32, fakes.HEX)} span_id={fakes.rand(rng, 16, fakes.HEX)}",
                "const veryLongIdentifierNameForTheHandlerFactoryBuilder = createHandlerFactoryBuilder();",
            ]
        for text in samples:
            with self.subTest(text=text[:40]):
                self.assertEqual(detectors_in(text), [])


class CatalogueTest(unittest.TestCase):
    def test_ids_are_stable_strings(self) -> None:
        for detector in DETECTORS:
            self.assertRegex(detector.id, r"^[a-z0-9-]+$")
            self.assertTrue(detector.name)
        self.assertIn("github-token", DETECTOR_IDS)
        self.assertIn("gcp-service-account-key", DETECTOR_IDS)

    def test_disabled_detectors_do_not_run(self) -> None:
        token = fakes.github(random.Random(81))
        quiet = Scanner(options=__import__("bot_bottle.sidecar.dlp", fromlist=["ScanOptions"]).ScanOptions(
            disabled_detectors=frozenset({"github-token"})))
        self.assertEqual(quiet.scan_text(token), [])
        self.assertEqual(detectors_in(token), ["github-token"])

    def test_probes_cover_every_anchor(self) -> None:
        scanner = TokenScanner()
        for detector in scanner.detectors:
            for anchor in detector.anchors:
                if anchor != "*":
                    with self.subTest(anchor=anchor):
                        self.assertIn(anchor, scanner.present_anchors(f"xx {anchor} yy"))

    def test_present_anchors_on_many_matches(self) -> None:
        scanner = TokenScanner()
        text = "task- " * 500 + "ghp_"
        self.assertIn("ghp_", scanner.present_anchors(text))
        self.assertIn("sk-", scanner.present_anchors(text))

    def test_helpers(self) -> None:
        self.assertEqual(char_classes("aA1!"), 4)
        self.assertEqual(char_classes("abc"), 1)
        self.assertEqual(shannon(""), 0.0)
        self.assertAlmostEqual(shannon("ab"), 1.0)
        self.assertGreater(shannon(string.ascii_letters), 5.0)

    def test_token_at_text_edges(self) -> None:
        token = fakes.npm(random.Random(82))
        for text in (token, token + "\n", "\n" + token, f"({token})", f"'{token}'"):
            with self.subTest(text=repr(text[:5])):
                self.assertEqual(detectors_in(text), ["npm-token"])

    def test_many_tokens_in_one_text(self) -> None:
        rng = random.Random(83)
        tokens = [fakes.github(rng) for _ in range(50)]
        found = SCANNER.scan_text("\n".join(tokens))
        self.assertEqual(len(found), 50)


# The base class holds the checks; only its per-detector subclasses are tests.
del DetectorCase


class DocumentationShapesTest(unittest.TestCase):
    """Shapes found all over SDK data files and docs (botocore, awscli, cfn-lint: 218 findings in
    261 MB of installed packages before these rules, 31 after) that are no credential, next to the
    real ones that must still be found."""

    def test_documentation_keys_and_non_credential_tokens_are_not_findings(self) -> None:
        cases = [
            '"ChangeToken": "abcd12f2-46da-4fdb-b8d5-fbd4c466928f"',
            '"ClientRequestToken": "a8ca07e4-61ec-4399-99f4-19853801bcd5",',
            '"LockToken": "1eb5ec48-0000-0000-0000-ee9b906c541e"',
            '"IdempotencyToken": "527c5358-2a1a-4b9e-b1b9-7293b0ddff42"',
            '"LifecycleActionToken": "bcd2f1b8-9a78-44d3-8a7a-4dd07d7cf635"',
            '"VerificationToken": "QTKknzFg2J4ygwa+XvHAxUl1hyHoY0gVfZdfjIedHZ0="',
            '"output_token": "Jobs[-1].JobId"',
            '"encryptionKey": "arn:aws:kms:us-west-2:123456789012:alias/aws/s3"',
            '"usernameSecretArn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:greengrass-auth-1ABCDE"',
            '"AWS::IAM::AccessKey": "62d91b17309e76c8",',
            "token = '{current_phrase}'",
            "TOKEN = '[a-zA-Z_][a-zA-Z0-9_-]*'",
            '"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",',
            "X-Amz-Credential=AKIAEXAMPLE123456789%2F20250101%2Fus-west-2%2Fs3%2Faws4_request",
            '"PrivateKey": "-----BEGIN RSA PRIVATE KEY-----\\nMIIEowIABAKCAQEAqKpRgnn6yq26U3yt5YFZquyukfRjbMXDcNOK4rMCxDR...fvY4+te\\n'
            '-----END RSA PRIVATE KEY-----"',
            '"privateKey": "-----BEGIN RSA PRIVATE KEY-----\\nEXAMPLEBAAKCAQEA+AD3qeU2toBy5O5v7wnRLVo/tngVickL5+6Jf4tPrPeuoebM\\n'
            '-----END RSA PRIVATE KEY-----"',
            '"PrivateKey": "-----BEGIN DSA PRIVATE KEY-----<a very long private key string>-----END DSA PRIVATE KEY-----"',
        ]
        for text in cases:
            with self.subTest(text[:40]):
                self.assertEqual(detectors_in(text), [])

    def test_the_real_shapes_next_to_them_are_still_found(self) -> None:
        rng = random.Random(77)
        aws_id = fakes.aws_key_id(rng)
        secret = fakes.aws_secret(rng)
        body = base64.b64encode(rng.randbytes(600)).decode()
        cases = {
            f'"SessionToken": "{fakes.rand(rng, 40)}"': "generic-secret-assignment",
            f'"access_token": "{fakes.rand(rng, 32)}"': "generic-secret-assignment",
            f'"refresh_token": "{fakes.rand(rng, 32)}"': "generic-secret-assignment",
            f'"client_secret": "{fakes.rand(rng, 32)}"': "generic-secret-assignment",
            'db_password = "Xy7!ba-zinga9Q"': "generic-secret-assignment",  # "a-z", but no regex class
            f'aws_secret_access_key = {secret}': "aws-secret-access-key",
            f"X-Amz-Credential={aws_id}%2F20250101": "aws-access-key-id",
            f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----": "private-key",
        }
        for text, detector in cases.items():
            with self.subTest(detector, text=text[:30]):
                self.assertIn(detector, detectors_in(text))
