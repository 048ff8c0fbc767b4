"""DLP cost of an LLM request by the language of its conversation, side by side with English.

Run: ``.venv/bin/python bench/dlp_languages.py [--mb 2] [--runs 5]``. An agent's request to its
provider is JSON: a long conversation (the user's words, the model's answers) with code and tool
output in it. The same request is generated in English, Russian, Chinese, Japanese and Korean
(the same code and tool output; only the prose differs), with one bottle secret planted in a
disguise (fullwidth letters, as an agent told to hide it might write it) in the middle. Each is
scanned as the proxy scans a request body (``Scanner.scan_request``), and as a streamed upload is
scanned (1 MiB batches, ``scan_batch(..., deep=True)``).

Non-ASCII text is where the compatibility-form and lookalike searches look, so a conversation in
another language costs more than an English one; this reports by how much, as ms per MB and as
the ratio to English measured in the same run. The disguised secret must be found in every
language (else the run fails).

Writes ``bench/results/dlp_languages.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import bar_plot, median, write_results  # noqa: E402
from bot_bottle.sidecar.dlp import Scanner  # noqa: E402

SECRET_NAME = "API_SECRET"
SECRET = "vault-Kq7vN2xPz9RwT4mB8sLd3Fh6"
BATCH = 1 << 20

PROSE = {
    "English": [
        "Please refactor the authentication module so that the tests pass again.",
        "Read the code first, then propose the smallest change that fixes the failing case.",
        "Do not break the existing interfaces; other services call them.",
        "I ran the suite and two tests in the session store still fail, see the output below.",
    ],
    "Russian": [
        "Пожалуйста, переработайте модуль аутентификации, чтобы тесты снова проходили.",
        "Сначала прочитайте код, затем предложите наименьшее изменение, которое исправит ошибку.",
        "Не ломайте существующие интерфейсы: их вызывают другие сервисы.",
        "Я запустил тесты, и два теста хранилища сессий всё ещё падают, вывод ниже.",
    ],
    "Chinese": [
        "请重构认证模块，让测试重新通过。",
        "先阅读代码，然后提出能修复失败用例的最小改动；",
        "不要破坏现有的接口，其他服务在调用它们。",
        "我运行了测试，会话存储中的两个测试仍然失败，输出如下：",
    ],
    "Japanese": [
        "認証モジュールをリファクタリングして、テストが再び通るようにしてください。",
        "まずコードを読んでから、失敗しているケースを直す最小の変更を提案してください。",
        "既存のインターフェースを壊さないでください。他のサービスが呼び出しています。",
        "テストを実行したところ、セッションストアのテストが二つまだ失敗しています。出力は以下の通りです。",
    ],
    "Korean": [
        "테스트가 다시 통과하도록 인증 모듈을 리팩터링해 주세요.",
        "먼저 코드를 읽은 다음 실패하는 경우를 고치는 가장 작은 변경을 제안해 주세요.",
        "기존 인터페이스를 깨뜨리지 마세요. 다른 서비스가 호출합니다.",
        "테스트를 실행했더니 세션 저장소 테스트 두 개가 여전히 실패합니다. 출력은 아래와 같습니다.",
    ],
}

CODE = [
    "def load_session(store, session_id):\n    record = store.get(session_id)\n    if record is None:\n"
    "        raise KeyError(session_id)\n    return Session.from_dict(record)\n",
    "FAILED tests/test_session.py::test_expiry - AssertionError: assert 3600 == 1800\n",
    "const handler = async (req, res) => {\n  const user = await auth.verify(req.headers.authorization);\n"
    "  res.json({ id: user.id, roles: user.roles });\n};\n",
    "commit 4f9c2a1b7e3d5f6a8b9c0d1e2f3a4b5c6d7e8f90\nAuthor: dev <dev@example.test>\n",
]


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def request(language: str, size: int, rng: random.Random) -> bytes:
    """A provider request of about ``size`` bytes: turns of prose with code between them, the
    disguised secret in the middle turn."""
    prose = PROSE[language]
    turns: list[dict[str, str]] = []
    length = 0
    while length < size:
        content = " ".join(rng.choice(prose) for _ in range(rng.randint(2, 6)))
        if rng.random() < 0.5:
            content += "\n```\n" + rng.choice(CODE) + "```\n" + rng.choice(prose)
        turns.append({"role": "user" if len(turns) % 2 == 0 else "assistant", "content": content})
        length += len(content.encode()) + 40
    middle = turns[len(turns) // 2]
    middle["content"] += " " + fullwidth(SECRET) + " " + prose[0]
    body = {"model": "bench-model", "max_tokens": 4096, "messages": turns}
    return json.dumps(body, ensure_ascii=False).encode()


def _cpu_median(fn, runs: int) -> float:
    # CPU time of this process, not wall clock: the machines are shared, and a neighbour's load
    # would otherwise land on whichever language happened to be measured at the time.
    times = []
    for _ in range(runs):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=2.0, help="size of each request in MB (default 2)")
    parser.add_argument("--runs", type=int, default=5, help="scans per language; the median is kept")
    args = parser.parse_args()
    scanner = Scanner({SECRET_NAME: SECRET})
    headers = [("content-type", "application/json")]
    url = "https://api.provider.test/v1/messages"
    rows = []
    failed = []
    for language in PROSE:
        body = request(language, int(args.mb * 1_000_000), random.Random(11))
        batches = [body[i : i + BATCH] for i in range(0, len(body), BATCH)]
        found = {f.secret_name for f in scanner.scan_request("POST", url, headers, body)}
        streamed = {f.secret_name for b in batches for f in scanner.scan_batch(b, "body", deep=True)}
        if SECRET_NAME not in found or SECRET_NAME not in streamed:
            failed.append(language)
        mb = len(body) / 1e6
        request_s = _cpu_median(lambda: scanner.scan_request("POST", url, headers, body), args.runs)
        stream_s = _cpu_median(lambda: [scanner.scan_batch(b, "body", deep=True) for b in batches], args.runs)
        rows.append({"language": language, "mb": round(mb, 2), "non_ascii_share": round(
            sum(1 for b in body if b >= 0x80) / len(body), 2),
            "request_ms_per_mb": round(request_s * 1000 / mb, 1), "stream_ms_per_mb": round(stream_s * 1000 / mb, 1),
            "found_in_request": SECRET_NAME in found, "found_streamed": SECRET_NAME in streamed})
    english = rows[0]
    for row in rows:
        row["request_vs_english"] = round(row["request_ms_per_mb"] / english["request_ms_per_mb"], 2)
        row["stream_vs_english"] = round(row["stream_ms_per_mb"] / english["stream_ms_per_mb"], 2)
        print(f"{row['language']:9} {row['mb']:.2f} MB ({row['non_ascii_share']:.0%} non-ASCII bytes): request "
              f"{row['request_ms_per_mb']:6.1f} ms/MB ({row['request_vs_english']:.2f}x English), streamed "
              f"{row['stream_ms_per_mb']:6.1f} ms/MB ({row['stream_vs_english']:.2f}x); disguised secret found: "
              f"{'yes' if row['found_in_request'] and row['found_streamed'] else 'NO'}")
    path = write_results("dlp_languages", {"runs": args.runs, "rows": rows, "missed_in": failed})
    bar_plot("dlp_languages", "DLP cost of an LLM request by conversation language",
             [row["language"] for row in rows], [row["request_ms_per_mb"] for row in rows], "ms per MB")
    print(f"wrote {path}")
    if failed:
        print(f"the disguised secret was missed in: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
