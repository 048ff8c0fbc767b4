"""More token formats, GitLab's routable tokens appended to a blob, AWS key ids run together.

- DigitalOcean ("dop_v1_" and 64 hex), Shopify ("shpat_" and 32 hex), SendGrid ("SG." and two
  dotted base64url parts), Postman ("PMAK-" and two hex parts), Linear ("lin_api_" and 40 letters
  and digits), Grafana service accounts ("glsa_", 32 letters and digits, "_" and 8 hex),
  Doppler ("dp.pt."...) and Atlassian ("ATATT3xFfGF0"...) tokens: standing apart, glued,
  appended to a blob, and their look-alikes.
- GitLab's routable tokens ("glpat-" payload ".01." length and CRC) are read whole, also appended
  to a blob.
- Two or three AWS key ids pasted without a separator are each found, and a manifest error hides
  them.
- Anthropic's admin keys ("sk-ant-admin01-", 110 characters) appended to a blob.
"""

from __future__ import annotations

import random
import string
import unittest
import zlib

from bot_bottle.manifest.conceal import HIDDEN, conceal_tokens, may_hold_credential
from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.tokens import TokenScanner
from tests.unit import test_dlp_fakes as fakes

RNG = random.Random(1510)
SCANNER = Scanner()
TOKENS = TokenScanner()
UPPER_HEX = "0123456789ABCDEF"
BASE36 = string.digits + string.ascii_lowercase


def detectors(text: str) -> list[str]:
    return sorted({f.detector for f in SCANNER.scan_text(text)})


def spans(text: str) -> list[tuple[int, int, str]]:
    return [(start, end, id_) for start, end, _det, id_, _name in TOKENS.scan(text)]


blob = fakes.mixed_blob


def base36(number: int, width: int) -> str:
    digits = ""
    while number:
        number, digit = divmod(number, 36)
        digits = BASE36[digit] + digits
    return digits.rjust(width, "0")


def gitlab_routable(rng: random.Random, version: str | None = "01", size: int = 37, prefix: str = "glpat-") -> str:
    """A routable token as GitLab's generator writes it: its CRC holds."""
    payload = fakes.rand(rng, size, fakes.URLSAFE)
    head = f"{prefix}{payload}." + (f"{version}." if version else "") + base36(size, 2)
    return head + base36(zlib.crc32(head.encode()), 7)


def formats(rng: random.Random) -> dict[str, tuple[str, str]]:
    return {
        "digitalocean pat": ("dop_v1_" + fakes.rand(rng, 64, fakes.HEX), "digitalocean-token"),
        "digitalocean oauth": ("doo_v1_" + fakes.rand(rng, 64, fakes.HEX), "digitalocean-token"),
        "digitalocean refresh": ("dor_v1_" + fakes.rand(rng, 64, fakes.HEX), "digitalocean-token"),
        "shopify admin": ("shpat_" + fakes.rand(rng, 32, fakes.HEX), "shopify-token"),
        "shopify shared secret": ("shpss_" + fakes.rand(rng, 32, fakes.HEX), "shopify-token"),
        "shopify custom app": ("shpca_" + fakes.rand(rng, 32, fakes.HEX), "shopify-token"),
        "shopify private app": ("shppa_" + fakes.rand(rng, 32, fakes.HEX), "shopify-token"),
        "sendgrid": ("SG." + fakes.rand(rng, 22, fakes.URLSAFE) + "." + fakes.rand(rng, 43, fakes.URLSAFE),
                     "sendgrid-api-key"),
        "postman": ("PMAK-" + fakes.rand(rng, 24, fakes.HEX) + "-" + fakes.rand(rng, 34, fakes.HEX), "postman-api-key"),
        "linear": ("lin_api_" + fakes.rand(rng, 40), "linear-api-key"),
        "grafana": ("glsa_" + fakes.rand(rng, 32) + "_" + fakes.rand(rng, 8, fakes.HEX), "grafana-token"),
        "doppler personal": ("dp.pt." + fakes.rand(rng, 43), "doppler-token"),
        "doppler service": ("dp.st." + fakes.rand(rng, 40), "doppler-token"),
        "atlassian": ("ATATT3xFfGF0" + fakes.rand(rng, 170, fakes.URLSAFE) + "=" + fakes.rand(rng, 8, UPPER_HEX),
                      "atlassian-api-token"),
        "gitlab routable": (gitlab_routable(rng), "gitlab-token"),
        "gitlab routable, unversioned": (gitlab_routable(rng, None, 27), "gitlab-token"),
        "anthropic admin": ("sk-ant-admin01-" + fakes.rand(rng, 93, fakes.URLSAFE) + "AA", "anthropic-api-key"),
    }


class NewFormatsTest(unittest.TestCase):
    def test_standing_apart(self) -> None:
        for name, (token, detector) in formats(RNG).items():
            for text in (f"TOKEN={token}\n", f'{{"key": "{token}"}}', f"Authorization: Bearer {token}",
                         f"see {token}. Then"):
                with self.subTest(name, text=text[:8]):
                    self.assertEqual(detectors(text), [detector])
                    self.assertIn((text.index(token), text.index(token) + len(token), detector), spans(text))

    def test_glued_and_appended_to_a_blob(self) -> None:
        for name, (token, detector) in formats(RNG).items():
            for prefix in ("x", "my", blob(RNG, 300), blob(RNG, 300, fakes.URLSAFE), fakes.rand(RNG, 300, fakes.HEX),
                           fakes.github(RNG), fakes.anthropic(RNG)):
                if prefix.startswith(token[:7]):
                    continue  # a key of the same format before it takes this one in: one value
                text = prefix + token
                with self.subTest(name, prefix=prefix[:6]):
                    self.assertIn((len(prefix), len(text), detector), spans(text))

    def test_inside_blobs_stay_clean(self) -> None:
        rng = random.Random(9)
        for anchor in ("dop_v1_", "shpat_", "SG.", "PMAK-", "lin_api_", "glsa_", "dp.pt.", "ATATT3"):
            for _ in range(20):
                text = blob(rng, 150, fakes.URLSAFE) + anchor + blob(rng, 150, fakes.URLSAFE)
                with self.subTest(anchor):
                    self.assertEqual(detectors(f"data = '{text}'\n"), [])

    def test_look_alikes_stay_clean(self) -> None:
        texts = [
            "dop_v1_" + "0" * 64,  # one repeated digit
            "dop_v1_" + fakes.rand(RNG, 80, fakes.HEX),  # longer than a token: a hash glued on
            "dop_v1_" + fakes.rand(RNG, 64, fakes.HEX) + "f",
            "shpat_" + fakes.rand(RNG, 40, fakes.HEX),  # a SHA-1 after a name
            "shpat_" + fakes.rand(RNG, 32, fakes.ALNUM),  # not hex
            "def shpat_handler(shop): return shop",
            "SG.settings.DEFAULT_FROM_EMAIL_ADDRESS.for_the_transactional_mail_service_x",
            "SG." + "a" * 22 + "." + "b" * 43,
            "MSG.info.format(name)",
            fakes.rand(RNG, 200, fakes.URLSAFE) + "SG." + fakes.rand(RNG, 22, fakes.URLSAFE) + "."
            + fakes.rand(RNG, 43, fakes.URLSAFE) + "Zq9",  # inside a longer run
            "PMAK-" + fakes.rand(RNG, 24, fakes.HEX) + "-" + fakes.rand(RNG, 40, fakes.HEX),  # too long
            "lin_api_" + "abc" * 14,
            "lin_api_request_handler_for_the_issue_tracker_sync",
            "glsa_" + fakes.rand(RNG, 32, string.ascii_lowercase) + "_deadbeef",  # one case: a name
            "udp.st.default_transport_settings_value_that_is_long",
            "dp.pt." + "ab" * 22,
            "ATATT3" + "A" * 170 + "=0123ABCD",
            "ATATT3xFfGF0" + fakes.rand(RNG, 20, fakes.URLSAFE),  # too short, no checksum
        ]
        for text in texts:
            with self.subTest(text=text[:24]):
                self.assertEqual(detectors(f"value = '{text}'\n"), [])


class GitLabRoutableTest(unittest.TestCase):
    def test_read_whole_standing_apart(self) -> None:
        for token in (gitlab_routable(RNG), gitlab_routable(RNG, None), gitlab_routable(RNG, size=120),
                      gitlab_routable(RNG, prefix="glrt-t1_")):
            text = f"GITLAB_TOKEN={token}\n"
            with self.subTest(token=token[:10]):
                self.assertIn((13, 13 + len(token), "gitlab-token"), spans(text))

    def test_appended_to_blobs(self) -> None:
        for token in (gitlab_routable(RNG), gitlab_routable(RNG, None, 27), gitlab_routable(RNG, size=200)):
            for prefix in (blob(RNG, 300), blob(RNG, 300, fakes.URLSAFE), fakes.github(RNG),
                           "\n".join(blob(RNG, 76) for _ in range(3)) + "\n" + blob(RNG, 20)):
                text = prefix + token
                with self.subTest(token=token[:10], prefix=prefix[:6]):
                    self.assertIn((len(prefix), len(text), "gitlab-token"), spans(text))
                    self.assertIn("gitlab-token", detectors(f'{{"data": "{text}"}}'))

    def test_gitlabs_own_example_appended(self) -> None:
        # GitLab's secret-detection rules' example of a routable token: its CRC holds.
        token = "glpat-bzox79Of-KE9FD2LjoXXF4CvyxA.0r03gxo7s"
        text = blob(RNG, 300) + token
        self.assertIn((300, len(text), "gitlab-token"), spans(text))

    def test_appended_to_a_blob_in_a_list(self) -> None:
        token = gitlab_routable(RNG)
        text = '["' + blob(RNG, 200) + token + '", "' + blob(RNG, 200) + '"]'
        self.assertIn((202, 202 + len(token), "gitlab-token"), spans(text))

    def test_wrong_tail_inside_a_blob_stays_clean(self) -> None:
        # A dotted tail whose length holder is wrong and whose CRC does not hold, at a blob's end.
        for size in (27, 37, 50):
            payload = fakes.rand(RNG, size, fakes.URLSAFE)
            tail = "." + base36(size + 1, 2) + "".join(RNG.choice(BASE36) for _ in range(7))
            text = blob(RNG, 300, fakes.URLSAFE) + "glpat-" + payload + tail
            with self.subTest(size=size):
                self.assertEqual(detectors(f"data = '{text}'\n"), [])

    def test_dotted_names_are_no_tail(self) -> None:
        # A version or a file name after a legacy token is not read as part of it.
        token = "glpat-" + fakes.rand(RNG, 20)
        text = f"{token}.v1.example.yaml"
        self.assertIn((0, len(token), "gitlab-token"), spans(text))


def anthropic_admin(rng: random.Random) -> str:
    return "sk-ant-admin01-" + fakes.rand(rng, 93, fakes.URLSAFE) + "AA"


class AnthropicAdminTest(unittest.TestCase):
    def test_upper_cased_appended_to_a_blob(self) -> None:
        key = anthropic_admin(RNG).upper()
        text = blob(RNG, 300) + key
        self.assertIn((300, len(text), "anthropic-api-key"), spans(text))

    def test_not_ending_the_run_stays_clean(self) -> None:
        # The admin length with an API key's prefix (an API key and two characters glued on), or
        # an admin key that the run goes on after.
        api_key = fakes.anthropic(RNG)
        for value in (api_key + "-x", api_key + "A9", anthropic_admin(RNG) + "A", anthropic_admin(RNG) + "-x"):
            with self.subTest(value=value[-4:]):
                self.assertEqual(detectors(blob(RNG, 200) + value + "\n"), [])


def aws_ids(rng: random.Random, count: int) -> list[str]:
    return [fakes.aws_key_id(rng, prefix) for prefix in ("AKIA", "ASIA", "AKIA")[:count]]


class AwsIdsRunTogetherTest(unittest.TestCase):
    def test_each_id_found(self) -> None:
        for count in (2, 3):
            ids = aws_ids(RNG, count)
            for before, after in (("", ""), ("ids=", "\n"), ('"', '",'), ("x", "")):
                text = before + "".join(ids) + after
                with self.subTest(count=count, before=before):
                    found = [span for span in spans(text) if span[2] == "aws-access-key-id"]
                    self.assertEqual(found, [(len(before) + 20 * i, len(before) + 20 * (i + 1), "aws-access-key-id")
                                             for i in range(count)])

    def test_hidden_in_a_manifest_error(self) -> None:
        pair = "".join(aws_ids(RNG, 2))
        self.assertTrue(may_hold_credential(pair))
        self.assertEqual(conceal_tokens(f"env.{pair}"), f"env.{HIDDEN}")

    def test_upper_case_runs_stay_clean(self) -> None:
        rng = random.Random(5)
        ids = aws_ids(rng, 2)
        texts = [
            "".join(ids) + "X",  # the run goes on in capitals
            "Q" + "".join(ids),
            fakes.rand(rng, 40, fakes.UPPER32) + "".join(ids) + fakes.rand(rng, 40, fakes.UPPER32),
            "AKIA" + "A" * 16 + ids[0],  # the other one's body is no random one
            "AKIA" + "ABCDEFGHIJKLMNOP" + "AKIA" + "QRSTUVWXYZABCDEF",
        ]
        for text in texts:
            with self.subTest(text=text[:24]):
                self.assertEqual(detectors(f"value = '{text}'\n"), [])


if __name__ == "__main__":
    unittest.main()
