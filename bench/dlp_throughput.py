"""DLP engine throughput over 100 MB of generated source-code-like text with planted secrets.

Run: ``.venv/bin/python bench/dlp_throughput.py [--mb 100] [--runs 3]``. The text is generated
deterministically in memory (Python- and JS-like lines, identifiers, long hex hashes, UUIDs,
base64 blobs, integrity strings, URLs) and a few secrets are planted in it: the bottle's own
values raw and encoded (base64 inside a larger blob, hex, percent-encoding) and well-known token
formats. The engine scans it as 1 MiB files (as git-gate scans blobs) with the default options.

Writes ``bench/results/dlp_throughput.json`` and ``.png``. Targets: at least 50 MB/s (median of
the runs, wall clock) and every planted secret found.

Streamed uploads are scanned in 1 MiB batches with ``Scanner.scan_batch(..., deep=True)``, as the
proxy calls it (a byte-level prefilter, the full direct scan around its candidates, and the
decoded layer of the batch's text). That path is measured too, on the same text (every plant must
still be found) and on random binary data, the usual large upload, with the same plants at random
offsets; ``scan_text(..., deep=True)`` of the binary batches (the whole batch scanned, as a
buffered body is) is the baseline.

The inbound prompt-injection scan of an answer (``scan_response_for_injection``) is measured on
about 1 MB each of English text, an HTML page, accented prose decomposed into combining marks
(NFD) and text with a zero-width space between every two characters (``inbound``, MB/s of UTF-8).
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
import time
import unicodedata
import uuid
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import bar_plot, median, write_results  # noqa: E402
from bot_bottle.sidecar.dlp import Scanner, ScanOptions  # noqa: E402
from bot_bottle.sidecar.dlp.inbound import scan_response_for_injection  # noqa: E402

TARGET_MB_S = 50.0
FILE_SIZE = 1 << 20

_IDENTS = ["user_id", "request", "response", "config", "handler", "items", "result", "token_count", "value",
           "data", "self", "cls", "index", "payload", "session", "cache", "logger", "parser", "builder",
           "options", "password_field", "secret_name", "api_version", "client", "server", "buffer", "stream",
           "context", "manager", "registry", "key", "api_key_name", "access_token_ttl"]
_KEYWORDS = ["def", "return", "import", "from", "class", "if", "else", "for", "while", "const", "let",
             "function", "async", "await"]


def _line(rng: random.Random) -> str:
    indent = " " * (4 * rng.randint(0, 3))
    r = rng.random()
    if r < 0.08:
        return f'{indent}commit = "{rng.getrandbits(160):040x}"'
    if r < 0.12:
        return f'{indent}digest = "sha256:{rng.getrandbits(256):064x}"'
    if r < 0.17:
        return f'{indent}id = "{uuid.UUID(int=rng.getrandbits(128))}"'
    if r < 0.20:
        return f'{indent}img = "data:image/png;base64,' + base64.b64encode(b"\x89PNG" + rng.randbytes(90)).decode() + '"'
    if r < 0.23:
        return f'{indent}"integrity": "sha512-' + base64.b64encode(rng.randbytes(64)).decode() + '",'
    if r < 0.26:
        return f'{indent}blob = "' + base64.b64encode(rng.randbytes(rng.randint(30, 120))).decode() + '"'
    if r < 0.30:
        return f"{indent}# " + " ".join(rng.choice(_IDENTS + _KEYWORDS) for _ in range(rng.randint(4, 14)))
    if r < 0.33:
        return (f'{indent}url = "https://api.example.com/v2/{rng.choice(_IDENTS)}/{rng.getrandbits(40)}'
                f'?page={rng.randint(1, 99)}&sort=desc"')
    if r < 0.35:
        return f'{indent}{rng.choice(_IDENTS)}: "{rng.choice(_IDENTS)}-{rng.randint(1, 9)}.{rng.randint(0, 20)}"'
    a, b, c = rng.choice(_IDENTS), rng.choice(_IDENTS), rng.choice(_IDENTS)
    forms = [
        f"{indent}{a} = {b}.{c}({rng.randint(0, 999)})",
        f"{indent}{rng.choice(_KEYWORDS)} {a}({b}, {c}):",
        f'{indent}const {a} = await {b}.{c}("{rng.choice(_IDENTS)}");',
        f'{indent}{a}["{b}"] = {c} + {rng.random():.4f}',
        f"{indent}if ({a} && {b}.length > {rng.randint(1, 64)}) {{ return {c}; }}",
        f"{indent}self.{a} = {b}  # {rng.choice(_IDENTS)} {rng.choice(_KEYWORDS)}",
    ]
    return rng.choice(forms)


def generate(size: int, seed: int = 20240601) -> str:
    """About ``size`` characters of source-code-like text, the same on every run."""
    rng = random.Random(seed)
    pool = [_line(rng) for _ in range(50000)]
    out: list[str] = []
    total = 0
    while total < size:
        block = "\n".join(rng.choices(pool, k=4000)) + "\n"
        out.append(block)
        total += len(block)
    return "".join(out)[:size]


def _rand(rng: random.Random, n: int, alphabet: str) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def plants(rng: random.Random, secrets: dict[str, str]) -> list[tuple[str, str, str]]:
    """``(line to insert, the exact leaked text, expected detector or secret name)``."""
    alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    db, route, pw = secrets["DB_PASSWORD"], secrets["ROUTE_TOKEN"], secrets["SESSION_SECRET"]
    blob = base64.b64encode(rng.randbytes(301) + route.encode() + rng.randbytes(77)).decode()
    github = "ghp_" + _rand(rng, 33, alnum) + "aZ9"
    aws = "AKIA" + _rand(rng, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    pem = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
           + "\n".join(base64.b64encode(rng.randbytes(48)).decode() for _ in range(6))
           + "\n-----END OPENSSH PRIVATE KEY-----")
    header = base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(b'{"sub":"42","scope":"admin"}').rstrip(b"=").decode()
    jwt = f"{header}.{body}.{_rand(rng, 86, alnum + '-_')}"
    stripe = "sk_live_" + _rand(rng, 21, alnum) + "Q7x"
    slack = f"xoxb-{_rand(rng, 11, '0123456789')}-{_rand(rng, 13, '0123456789')}-{_rand(rng, 21, alnum)}Ab3"
    openai = "sk-proj-" + _rand(rng, 100, alnum + "-_") + "A1b"
    anthropic = "sk-ant-api03-" + _rand(rng, 90, alnum + "-_") + "Zz9AA"
    npm = "npm_" + _rand(rng, 33, alnum) + "Xy7"
    gcp = "AIza" + _rand(rng, 32, alnum) + "-_Q"
    return [
        (f'DATABASE_URL = "postgres://app:{db}@db:5432/app"', db, "DB_PASSWORD"),
        (f'fixture = "{blob}"', blob, "ROUTE_TOKEN"),
        (f"hexdump = '{pw.encode().hex()}'", pw.encode().hex(), "SESSION_SECRET"),
        (f'callback = "https://hooks.example/cb?s={quote(pw, safe="")}"', quote(pw, safe=""), "SESSION_SECRET"),
        (f"    reversed_ = '{db[::-1]}'", db[::-1], "DB_PASSWORD"),
        (f'auth = "Basic {base64.b64encode(("deploy:" + route).encode()).decode()}"',
         base64.b64encode(("deploy:" + route).encode()).decode(), "ROUTE_TOKEN"),
        (f'GITHUB_TOKEN = "{github}"', github, "github-token"),
        (f"aws_access_key_id = {aws}", aws, "aws-access-key-id"),
        (f'key = """{pem}"""', pem, "private-key"),
        (f'headers["Authorization"] = "Bearer {jwt}"', jwt, "jwt"),
        (f"stripe.api_key = '{stripe}'", stripe, "stripe-secret-key"),
        (f"SLACK_BOT = '{slack}'", slack, "slack-token"),
        (f"client = OpenAI(api_key='{openai}')", openai, "openai-api-key"),
        (f"ANTHROPIC_API_KEY={anthropic}", anthropic, "anthropic-api-key"),
        (f"//registry.npmjs.org/:_authToken={npm}", npm, "npm-token"),
        (f'const mapsKey = "{gcp}";', gcp, "gcp-api-key"),
        ('db_password = "Zq8#xP2v!Lm9"', "Zq8#xP2v!Lm9", "generic-secret-assignment"),
    ]


def build(size: int, rng: random.Random, secrets: dict[str, str]) -> tuple[list[str], list[tuple[int, int, int, str]]]:
    """The text as files of about FILE_SIZE, with the plants at spread-out line starts.

    Returns the files and ``(file index, start, end, expected)`` of every plant."""
    text = generate(size)
    items = plants(rng, secrets)
    files: list[str] = []
    where: list[tuple[int, int, int, str]] = []
    position = 0
    plant_every = max(1, (size // FILE_SIZE) // len(items))
    index = 0
    while position < len(text):
        end = text.find("\n", position + FILE_SIZE - 200)
        end = len(text) if end < 0 else end + 1
        chunk = text[position:end]
        file_index = len(files)
        if index < len(items) and file_index % plant_every == plant_every // 2:
            line, leaked, expected = items[index]
            cut = chunk.find("\n", len(chunk) // 2) + 1
            chunk = chunk[:cut] + line + "\n" + chunk[cut:]
            start = cut + line.index(leaked)
            where.append((file_index, start, start + len(leaked), expected))
            index += 1
        files.append(chunk)
        position = end
    return files, where


def scan_files(scanner: Scanner, files: list[str]) -> tuple[float, float, list[list]]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    results = [scanner.scan_text(f, location=f"file{i}") for i, f in enumerate(files)]
    return time.perf_counter() - wall0, time.process_time() - cpu0, results


def binary_batches(count: int, rng: random.Random, plants_: list[tuple[str, str, str]]) -> tuple[list[bytes], list[tuple[int, int, int, str]]]:
    """``count`` 1 MiB batches of random bytes (an archive, an image, model weights) with the
    plants at random offsets, one per batch in the first ``len(plants_)`` batches."""
    batches: list[bytes] = []
    where: list[tuple[int, int, int, str]] = []
    for i in range(count):
        data = bytearray(rng.randbytes(FILE_SIZE))
        if i < len(plants_):
            line, _, expected = plants_[i]
            raw = ("\n" + line + "\n").encode("utf-8")
            at = rng.randrange(0, FILE_SIZE - len(raw))
            data[at : at + len(raw)] = raw
            where.append((i, at + 1, at + len(raw) - 1, expected))
        batches.append(bytes(data))
    return batches, where


def check_plants(results: list[list], where: list[tuple[int, int, int, str]]) -> list[dict]:
    out = []
    for file_index, start, end, expected in where:
        hit = any(
            f.start < end and start < f.end and expected in (f.detector, f.secret_name)
            for f in results[file_index]
        )
        out.append({"expected": expected, "found": hit})
    return out


_PROSE = ("the quick brown fox jumps over the lazy dog while a caf\u00e9 r\u00e9sum\u00e9 of na\u00efve "
          "d\u00e9j\u00e0 vu reads \u00fcber stra\u00dfe and the gar\u00e7on at the fa\u00e7ade says the "
          "\u00e9l\u00e8ve was there").split()


def inbound_texts(size: int, seed: int = 5) -> dict[str, str]:
    """About ``size`` bytes each of the answers the inbound scan reads: plain English, an HTML
    page, accented prose decomposed (NFD: a combining mark after every accented letter), and
    English with a zero-width space between every two characters."""
    rng = random.Random(seed)
    english_words = [w for w in _PROSE if w.isascii()]
    english = " ".join(rng.choice(english_words) for _ in range(size // 4))[:size]
    accented = " ".join(rng.choice(_PROSE) for _ in range(size // 5))[:size]
    html = "".join(f"<p class='c{i % 7}'>{english[i * 200:(i + 1) * 200]}</p>\n"
                   f"<a href='https://example.com/{i}'>more</a>\n" for i in range(size // 260))
    return {
        "english": english,
        "html": f"<html><body>{html}</body></html>",
        "nfd": unicodedata.normalize("NFD", accented),
        "zero_width": "\u200b".join(english[: size // 4]),
    }


def inbound_rates(runs: int) -> dict[str, float]:
    """MB/s (of UTF-8) of the inbound scan over each of ``inbound_texts``, median of ``runs``."""
    out = {}
    for name, text in inbound_texts(1_000_000).items():
        scan_response_for_injection(text)  # tables built on first use
        walls = [_timed(lambda text=text: scan_response_for_injection(text)) for _ in range(runs)]
        out[name] = round(len(text.encode("utf-8")) / 1e6 / median(walls), 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=100, help="size of the generated text in MB (default 100)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.mb * 1_000_000
    rng = random.Random(7)
    secrets = {
        "DB_PASSWORD": "Vx9!kQ2#mW7pL4zR",
        "ROUTE_TOKEN": "rt_" + _rand(rng, 37, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
        "SESSION_SECRET": "s3ss10n-" + _rand(rng, 24, "abcdefghijklmnopqrstuvwxyz0123456789"),
        "NPM_PUBLISH": "publish-" + _rand(rng, 20, "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"),
    }
    generated = time.perf_counter()
    files, where = build(size, rng, secrets)
    total = sum(len(f) for f in files)
    print(f"generated {total / 1e6:.1f} MB in {len(files)} files, {len(where)} planted secrets "
          f"({time.perf_counter() - generated:.1f} s)")

    scanner = Scanner(secrets)
    walls, cpus, results = [], [], []
    for run in range(args.runs):
        wall, cpu, results = scan_files(scanner, files)
        walls.append(wall)
        cpus.append(cpu)
        print(f"run {run + 1}: {total / 1e6 / wall:.1f} MB/s wall, {total / 1e6 / cpu:.1f} MB/s cpu")
    checks = check_plants(results, where)
    missed = [c["expected"] for c in checks if not c["found"]]
    false_findings = sum(len(r) for r in results) - sum(1 for c in checks if c["found"])

    # Informational: the same text as one string, and with the optional layers on.
    joined = "".join(files)
    wall_one = min(_timed(lambda: scanner.scan_text(joined)) for _ in range(2))
    entropy_scanner = Scanner(secrets, ScanOptions(entropy=True))
    wall_entropy = _timed(lambda: [entropy_scanner.scan_text(f) for f in files[:20]])
    entropy_mb = sum(len(f) for f in files[:20]) / 1e6
    wall_deep = _timed(lambda: [scanner.scan_text(f, deep=True) for f in files[:20]])

    # Streamed batches: the same text, and random binary data with the same plants.
    text_batches = [f.encode("latin-1", "replace") if f.isascii() else f.encode("utf-8") for f in files]
    batch_walls, batch_results = [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        batch_results = [scanner.scan_batch(b, f"file{i}", deep=True) for i, b in enumerate(text_batches)]
        batch_walls.append(time.perf_counter() - start)
    batch_checks = check_plants(batch_results, where)
    text_bytes = sum(len(b) for b in text_batches)
    binary, binary_where = binary_batches(64, random.Random(11), plants(random.Random(12), secrets))
    binary_mb = sum(len(b) for b in binary) / 1e6
    binary_full = min(_timed(lambda: [scanner.scan_text(b, deep=True) for b in binary]) for _ in range(args.runs))
    binary_fast = []
    binary_results: list[list] = []
    for _ in range(args.runs):
        start = time.perf_counter()
        binary_results = [scanner.scan_batch(b, deep=True) for b in binary]
        binary_fast.append(time.perf_counter() - start)
    binary_checks = check_plants(binary_results, binary_where)
    stream_missed = [c["expected"] for c in batch_checks + binary_checks if not c["found"]]

    inbound = inbound_rates(args.runs)

    mb_s = total / 1e6 / median(walls)
    data = {
        "target_mb_s": TARGET_MB_S,
        "size_mb": round(total / 1e6, 2),
        "files": len(files),
        "file_size": FILE_SIZE,
        "known_secrets": sorted(secrets),
        "runs_wall_s": [round(w, 3) for w in walls],
        "runs_cpu_s": [round(c, 3) for c in cpus],
        "mb_s_median_wall": round(mb_s, 1),
        "mb_s_median_cpu": round(total / 1e6 / median(cpus), 1),
        "mb_s_single_string": round(total / 1e6 / wall_one, 1),
        "mb_s_entropy_on": round(entropy_mb / wall_entropy, 1),
        "mb_s_deep_decoding_on": round(entropy_mb / wall_deep, 1),
        "planted": len(checks),
        "planted_found": len(checks) - len(missed),
        "missed": missed,
        "other_findings": false_findings,
        "plants": checks,
        "stream_batches": {
            "mb_s_text": round(text_bytes / 1e6 / median(batch_walls), 1),
            "mb_s_binary": round(binary_mb / median(binary_fast), 1),
            "mb_s_binary_without_prefilter": round(binary_mb / binary_full, 1),
            "binary_mb": round(binary_mb, 1),
            "planted": len(batch_checks) + len(binary_checks),
            "planted_found": len(batch_checks) + len(binary_checks) - len(stream_missed),
            "missed": stream_missed,
        },
        "inbound_mb_s": inbound,
        "target_met": mb_s >= TARGET_MB_S and not missed and not stream_missed,
    }
    path = write_results("dlp_throughput", data)
    bar_plot(
        "dlp_throughput",
        "DLP engine throughput, source-code-like text",
        ["1 MiB files (default)", "one 100 MB string", "entropy on", "deep decoding on",
         "stream batches, text", "stream batches, binary", "binary, no prefilter"],
        [data["mb_s_median_wall"], data["mb_s_single_string"], data["mb_s_entropy_on"], data["mb_s_deep_decoding_on"],
         data["stream_batches"]["mb_s_text"], data["stream_batches"]["mb_s_binary"],
         data["stream_batches"]["mb_s_binary_without_prefilter"]],
        "MB/s",
        {f"target {TARGET_MB_S:.0f} MB/s": TARGET_MB_S},
    )
    print(f"median {mb_s:.1f} MB/s (target {TARGET_MB_S:.0f}); planted found {data['planted_found']}/{len(checks)}"
          f"{'; missed ' + ', '.join(missed) if missed else ''}; other findings {false_findings}")
    print(f"single string {data['mb_s_single_string']} MB/s, entropy on {data['mb_s_entropy_on']} MB/s, "
          f"deep decoding on {data['mb_s_deep_decoding_on']} MB/s")
    stream = data["stream_batches"]
    print(f"stream batches: text {stream['mb_s_text']} MB/s, binary {stream['mb_s_binary']} MB/s "
          f"(without the prefilter {stream['mb_s_binary_without_prefilter']}); planted found "
          f"{stream['planted_found']}/{stream['planted']}{'; missed ' + ', '.join(stream_missed) if stream_missed else ''}")
    print("inbound scan: " + ", ".join(f"{name} {rate} MB/s" for name, rate in inbound.items()))
    print(f"wrote {path}")
    return 0 if data["target_met"] else 1


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    raise SystemExit(main())
