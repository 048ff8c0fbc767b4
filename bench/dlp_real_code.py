"""False positives of the DLP engine on real code: the Python standard library and the packages
installed in this checkout's environment (SDKs with their data files and docs among them).

Run: ``.venv/bin/python bench/dlp_real_code.py [--max-mb N]``. Every text file under those trees
(source, JSON, YAML, docs; at most 2 MB each) is scanned as the proxy scans what an agent sends
(``Scanner.scan_text(..., deep=True)``: with the decoded layer, as requests and pushes are; no
bottle secrets, so only the token-format and assignment detectors can fire). None of this code
holds a live credential, so every finding is one an agent reading that code would trip over: on
a provider route a request carrying it would be blocked. Reported: findings per detector and per
100 MB, and scan speed. Which packages are installed differs between machines: compare runs on
one machine.

Writes ``bench/results/dlp_real_code.json`` (counts, and for each finding its file and line:
never the value) and ``.png``.
"""

from __future__ import annotations

import argparse
import collections
import sys
import sysconfig
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import bar_plot, write_results  # noqa: E402
from bot_bottle.sidecar.dlp import Scanner  # noqa: E402

SUFFIXES = (".py", ".pyi", ".js", ".ts", ".json", ".yml", ".yaml", ".toml", ".cfg", ".ini", ".md", ".rst",
            ".txt", ".sh", ".html", ".xml")
MAX_FILE = 2_000_000


def roots() -> list[Path]:
    paths = sysconfig.get_paths()
    out = [Path(paths["stdlib"]), Path(paths["purelib"])]
    return [p for i, p in enumerate(out) if p.is_dir() and p not in out[:i]]


def files(tops: list[Path]) -> list[Path]:
    found = []
    for top in tops:
        for path in sorted(top.rglob("*")):
            if path.suffix in SUFFIXES and path.is_file() and "__pycache__" not in path.parts:
                found.append(path)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-mb", type=int, default=0, help="stop after this many MB (default: all)")
    args = parser.parse_args()
    scanner = Scanner()
    tops = roots()
    by_detector: collections.Counter[str] = collections.Counter()
    where: list[dict[str, object]] = []
    total = scanned_files = 0
    cpu = 0.0
    for path in files(tops):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if len(text) > MAX_FILE:
            continue
        start = time.process_time()
        findings = scanner.scan_text(text, str(path), deep=True)
        cpu += time.process_time() - start
        total += len(text)
        scanned_files += 1
        for f in findings:
            by_detector[f.detector] += 1
            top = next(t for t in tops if path.is_relative_to(t))
            where.append({"file": f"{top.name}/{path.relative_to(top)}", "line": text.count("\n", 0, f.start) + 1,
                          "detector": f.detector})
        if args.max_mb and total >= args.max_mb * 1_000_000:
            break
    mb = total / 1e6
    count = sum(by_detector.values())
    data = {
        "roots": [str(t) for t in tops],
        "files": scanned_files,
        "mb": round(mb, 1),
        "findings": count,
        "findings_per_100_mb": round(count / mb * 100, 1) if mb else 0.0,
        "by_detector": dict(by_detector.most_common()),
        "mb_s_cpu": round(mb / cpu, 1) if cpu else 0.0,
        "where": where,
    }
    path = write_results("dlp_real_code", data)
    labels = list(by_detector) or ["none"]
    bar_plot("dlp_real_code", f"DLP findings in {mb:.0f} MB of installed code (none is a live credential)",
             labels, [float(by_detector[label]) for label in labels], "findings")
    print(f"{scanned_files} files, {mb:.0f} MB: {count} findings ({data['findings_per_100_mb']} per 100 MB; "
          + ", ".join(f"{d} {n}" for d, n in by_detector.most_common()) + f"), {data['mb_s_cpu']} MB/s -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
