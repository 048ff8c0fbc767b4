"""Fake credentials for the DLP tests: right shape, random content, never a real token.

Every generator takes a ``random.Random`` so the tests are deterministic. The other
``test_dlp_*`` modules import these functions.
"""

from __future__ import annotations

import base64
import json
import random
import string
import unittest

ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"
HEX = "0123456789abcdef"
UPPER32 = string.ascii_uppercase + "234567"


def rand(rng: random.Random, n: int, alphabet: str = ALNUM) -> str:
    """Random text that mixes upper, lower and digits whenever the alphabet allows."""
    while True:
        out = "".join(rng.choice(alphabet) for _ in range(n))
        if n < 12 or alphabet != ALNUM or (
            any(c.islower() for c in out) and any(c.isupper() for c in out) and any(c.isdigit() for c in out)
        ):
            return out


def mixed_blob(rng: random.Random, n: int, alphabet: str = B64) -> str:
    """Random encoded text mixing lower, upper and digits, ending in a letter (what a token may be
    appended to)."""
    while True:
        out = "".join(rng.choice(alphabet) for _ in range(n - 1)) + rng.choice(string.ascii_letters)
        if any(c.islower() for c in out) and any(c.isupper() for c in out) and any(c.isdigit() for c in out):
            return out


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def aws_key_id(rng: random.Random, prefix: str = "AKIA") -> str:
    return prefix + rand(rng, 16, UPPER32)


def aws_secret(rng: random.Random) -> str:
    while True:
        value = rand(rng, 40, B64)
        if any(c.islower() for c in value) and any(c.isupper() for c in value) and any(c.isdigit() for c in value):
            return value


def github(rng: random.Random, kind: str = "p") -> str:
    return f"gh{kind}_" + rand(rng, 36)


def github_pat(rng: random.Random) -> str:
    return "github_pat_" + rand(rng, 22) + "_" + rand(rng, 59)


def gitlab(rng: random.Random, prefix: str = "glpat-") -> str:
    return prefix + rand(rng, 20)


def slack_bot(rng: random.Random, kind: str = "b") -> str:
    return f"xox{kind}-" + rand(rng, 11, string.digits) + "-" + rand(rng, 13, string.digits) + "-" + rand(rng, 24)


def slack_webhook(rng: random.Random) -> str:
    return ("https://hooks.slack.com/services/T" + rand(rng, 8, string.ascii_uppercase + string.digits)
            + "/B" + rand(rng, 8, string.ascii_uppercase + string.digits) + "/" + rand(rng, 24))


def stripe(rng: random.Random, prefix: str = "sk_live_") -> str:
    return prefix + rand(rng, 24)


def anthropic(rng: random.Random) -> str:
    return "sk-ant-api03-" + rand(rng, 93, URLSAFE) + "AA"


def openai(rng: random.Random, project: bool = True) -> str:
    if project:
        return "sk-proj-" + rand(rng, 120, URLSAFE)
    return "sk-" + rand(rng, 20) + "T3BlbkFJ" + rand(rng, 20)


def npm(rng: random.Random) -> str:
    return "npm_" + rand(rng, 36)


def pypi(rng: random.Random) -> str:
    return "pypi-AgEIcHlwaS5vcmc" + rand(rng, 70, URLSAFE)


def gcp_api_key(rng: random.Random) -> str:
    return "AIza" + rand(rng, 35, URLSAFE)


def google_oauth(rng: random.Random) -> str:
    return "ya29." + rand(rng, 80, URLSAFE)


def google_client_secret(rng: random.Random) -> str:
    return "GOCSPX-" + rand(rng, 28, URLSAFE)


def azure_connection_string(rng: random.Random) -> str:
    key = base64.b64encode(rng.randbytes(64)).decode()
    return f"DefaultEndpointsProtocol=https;AccountName=acct{rng.randint(1, 99)};AccountKey={key};EndpointSuffix=core.windows.net"


def azure_sas_url(rng: random.Random) -> str:
    sig = base64.b64encode(rng.randbytes(32)).decode().replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    return ("https://acct.blob.core.windows.net/container/file.txt?sv=2022-11-02&ss=b&srt=o&sp=r"
            f"&se=2031-01-01T00:00:00Z&spr=https&sig={sig}")


def private_key(rng: random.Random, kind: str = "RSA ") -> str:
    lines = [base64.b64encode(rng.randbytes(48)).decode() for _ in range(8)]
    return f"-----BEGIN {kind}PRIVATE KEY-----\n" + "\n".join(lines) + f"\n-----END {kind}PRIVATE KEY-----\n"


def jwt(rng: random.Random, alg: str = "HS256") -> str:
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": str(rng.randint(1, 10**9)), "iat": 1700000000}).encode())
    signature = b64url(rng.randbytes(32)) if alg != "none" else ""
    return f"{header}.{payload}.{signature}"


def gcp_service_account(rng: random.Random) -> str:
    return json.dumps({
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": rand(rng, 40, HEX),
        "private_key": private_key(rng, ""),
        "client_email": "svc@demo-project.iam.gserviceaccount.com",
    }, indent=2)


def secret_value(rng: random.Random, n: int = 24) -> str:
    """A bottle secret as a user would have one: random, mixed, with a symbol or two."""
    return rand(rng, n - 2) + rng.choice("!#%*") + rand(rng, 1, string.digits)


def git_sha(rng: random.Random) -> str:
    return rand(rng, 40, HEX)


def uuid4(rng: random.Random) -> str:
    h = rand(rng, 32, HEX)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


class FakesTest(unittest.TestCase):
    """The generators themselves: right length, deterministic."""

    def test_deterministic(self) -> None:
        self.assertEqual(github(random.Random(1)), github(random.Random(1)))
        self.assertNotEqual(github(random.Random(1)), github(random.Random(2)))

    def test_shapes(self) -> None:
        rng = random.Random(5)
        self.assertEqual(len(github(rng)), 40)
        self.assertEqual(len(aws_key_id(rng)), 20)
        self.assertEqual(len(aws_secret(rng)), 40)
        self.assertEqual(len(npm(rng)), 40)
        self.assertEqual(len(uuid4(rng)), 36)
        self.assertEqual(jwt(rng).count("."), 2)
        self.assertIn("PRIVATE KEY", private_key(rng))
