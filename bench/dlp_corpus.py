"""Detection and false-positive rates of the DLP engine on a labelled corpus of requests.

Run: ``.venv/bin/python bench/dlp_corpus.py``. The corpus (``bench/dlp_corpus_data.py``) holds
exfiltration attempts across URL, headers, every body type, encodings, host names and splits,
and realistic benign requests. A request counts as *flagged* when the scanner reports anything
at all for it (what the proxy would block with ``outbound_on_match: block``); an attack counts
as *detected* when one of the findings is the expected one (the right secret or format).

Writes ``bench/results/dlp_corpus.json`` and ``.png``. Targets: every attack detected, no
benign request flagged.

Also checked: the streamed-upload path. Each case's body (or message) is put inside 1 MiB of
random bytes, as a large upload carries it, and scanned as a streamed batch
(``Scanner.scan_batch``: prefilter, then windows); it must report exactly what the direct scan of
the whole batch (``scan_text``, the layer a streamed body gets) reports.
"""

from __future__ import annotations

import random
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import bar_plot, write_results  # noqa: E402
from bench.dlp_corpus_data import SECRETS, Case, build_corpus  # noqa: E402
from bot_bottle.sidecar.dlp import Finding, Scanner, ScanOptions  # noqa: E402


def scan(scanner: Scanner, case: Case) -> list[Finding]:
    if case.websocket is not None:
        return scanner.scan_message(case.websocket)
    return scanner.scan_request(case.method, case.url, case.headers, case.body)


def main() -> int:
    corpus = build_corpus()
    scanner = Scanner(SECRETS)
    rows = []
    per_category: dict[tuple[bool, str], list[bool]] = defaultdict(list)
    started = time.perf_counter()
    for case in corpus:
        findings = scan(scanner, case)
        labels = {f.detector for f in findings} | {f.secret_name for f in findings if f.secret_name}
        if case.attack:
            ok = bool(labels & set(case.expect))
        else:
            ok = not findings
        per_category[(case.attack, case.category)].append(ok)
        rows.append({
            "id": case.id, "category": case.category, "attack": case.attack, "note": case.note,
            "ok": ok, "findings": [f.to_dict() for f in findings],
        })
    elapsed = time.perf_counter() - started

    # The streamed-upload path agrees with the direct scan of the same batch, case by case.
    rng = random.Random(5)
    stream_checked, stream_differs = 0, []
    for case in corpus:
        body = case.websocket if case.websocket is not None else case.body
        if not body:
            continue
        raw = body.encode("utf-8") if isinstance(body, str) else body
        batch = rng.randbytes(512 * 1024) + b"\n" + raw + b"\n" + rng.randbytes(512 * 1024)
        full = sorted((f.detector, f.secret_name or "", f.start, f.end) for f in scanner.scan_text(batch, deep=False))
        fast = sorted((f.detector, f.secret_name or "", f.start, f.end) for f in scanner.scan_batch(batch))
        stream_checked += 1
        if full != fast:
            stream_differs.append(case.id)

    # Informational: the same corpus with the optional entropy detector on.
    noisy = Scanner(SECRETS, ScanOptions(entropy=True))
    entropy_flagged = [c.id for c in corpus if not c.attack and scan(noisy, c)]

    attacks = [r for r in rows if r["attack"]]
    benign = [r for r in rows if not r["attack"]]
    detected = sum(r["ok"] for r in attacks)
    flagged = sum(not r["ok"] for r in benign)
    categories = []
    for (is_attack, category), oks in sorted(per_category.items(), key=lambda kv: (not kv[0][0], kv[0][1])):
        rate = sum(oks) / len(oks)
        categories.append({
            "category": category, "kind": "attack" if is_attack else "benign", "cases": len(oks),
            "detection_rate" if is_attack else "false_positive_rate": round(rate if is_attack else 1 - rate, 4),
        })
    data = {
        "cases": len(rows),
        "attacks": len(attacks),
        "benign": len(benign),
        "detected": detected,
        "detection_rate": round(detected / len(attacks), 4),
        "benign_flagged": flagged,
        "false_positive_rate": round(flagged / len(benign), 4),
        "scan_seconds_total": round(elapsed, 3),
        "categories": categories,
        "missed_attacks": [{"id": r["id"], "category": r["category"], "note": r["note"]} for r in attacks if not r["ok"]],
        "flagged_benign": [{"id": r["id"], "category": r["category"], "note": r["note"],
                            "detectors": sorted({f["detector"] for f in r["findings"]})} for r in benign if not r["ok"]],
        "entropy_on_benign_flagged": len(entropy_flagged),
        "entropy_on_flagged_ids": entropy_flagged,
        "stream_batches_checked": stream_checked,
        "stream_batches_differing": stream_differs,
        "target_met": detected == len(attacks) and flagged == 0 and not stream_differs,
        "rows": rows,
    }
    path = write_results("dlp_corpus", data)
    labels = [f"{c['category']} ({c['cases']})" for c in categories if c["kind"] == "attack"]
    values = [100 * c["detection_rate"] for c in categories if c["kind"] == "attack"]
    labels += [f"benign: {c['category']} ({c['cases']})" for c in categories if c["kind"] == "benign"]
    values += [100 * c["false_positive_rate"] for c in categories if c["kind"] == "benign"]
    bar_plot("dlp_corpus", "DLP corpus: attacks detected / benign flagged (%)", labels, values, "%",
             {"attacks: 100%": 100.0})

    for c in categories:
        rate = c.get("detection_rate", c.get("false_positive_rate"))
        what = "detected" if c["kind"] == "attack" else "flagged"
        print(f"{c['kind']:6s} {c['category']:18s} {c['cases']:3d} cases  {100 * rate:5.1f}% {what}")
    print(f"{len(rows)} cases: {detected}/{len(attacks)} attacks detected ({100 * data['detection_rate']:.1f}%), "
          f"{flagged}/{len(benign)} benign flagged ({100 * data['false_positive_rate']:.1f}%), {elapsed:.2f} s")
    print(f"with the optional entropy detector on: {len(entropy_flagged)}/{len(benign)} benign flagged")
    print(f"streamed batches: {stream_checked - len(stream_differs)}/{stream_checked} bodies give the same "
          f"findings as the direct scan of the whole batch"
          f"{' (differ: ' + ', '.join(stream_differs) + ')' if stream_differs else ''}")
    for miss in data["missed_attacks"]:
        print(f"  missed {miss['id']} [{miss['category']}] {miss['note']}")
    for fp in data["flagged_benign"]:
        print(f"  flagged {fp['id']} [{fp['category']}] {fp['note']}: {', '.join(fp['detectors'])}")
    print(f"wrote {path}")
    return 0 if data["target_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
