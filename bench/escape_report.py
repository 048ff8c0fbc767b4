"""Run the sandbox-escape suite and write its table: attack families x backends.

    python bench/escape_report.py                 # run the suite, write bench/results/escape.json and README's table
    python bench/escape_report.py --weakened      # the self-test: every attack against weakened bottles,
                                                  # bench/results/escape-weakened.json (README untouched)
    python bench/escape_report.py --from-json     # only redraw README's table from bench/results/escape.json

Each cell counts the techniques of one family on one backend: ``passed (N)`` when every attack
was stopped, ``FAILED (k of N)`` when any got out (or could not run), ``not applicable`` with the
reason when the backend cannot run on this host (the doctor's words). The table goes into
README.md between the ``escape-table`` markers; nothing else in README is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import unittest
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
README = REPO / "README.md"
START, END = "<!-- escape-table:start -->", "<!-- escape-table:end -->"
MODULE = "tests.integration.test_sandbox_escape"


class _Collect(unittest.TextTestResult):
    """Keeps one (backend, family, test, outcome, detail) row per test or class-level event."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.rows: list[dict[str, str]] = []

    def _row(self, test: unittest.TestCase, outcome: str, detail: str = "") -> None:
        cls = type(test)
        name = getattr(test, "_testMethodName", "")
        if not hasattr(cls, "family"):  # a class-level event (_ErrorHolder): "setUpClass (module.Class)"
            match = re.search(r"\(([\w.]+)\)", str(test))
            module, _, clsname = (match.group(1) if match else "").rpartition(".")
            cls = getattr(sys.modules.get(module), clsname, cls)
            name = "*"
        self.rows.append({"backend": getattr(cls, "backend", "?"), "family": getattr(cls, "family", "?"),
                          "class": cls.__name__, "test": name, "outcome": outcome, "detail": detail[:600]})

    def addSuccess(self, test: unittest.TestCase) -> None:  # noqa: N802
        super().addSuccess(test)
        self._row(test, "passed")

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:  # noqa: N802
        super().addFailure(test, err)
        self._row(test, "failed", str(err[1]).splitlines()[0] if str(err[1]) else err[0].__name__)

    def addError(self, test: unittest.TestCase, err: Any) -> None:  # noqa: N802
        super().addError(test, err)
        self._row(test, "error", f"{err[0].__name__}: {err[1]}")

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:  # noqa: N802
        super().addSkip(test, reason)
        self._row(test, "skipped", reason)


def run_suite(weakened: bool) -> dict[str, Any]:
    if weakened:
        os.environ["BOT_BOTTLE_ESCAPE_WEAKEN"] = "1"
    else:
        os.environ.pop("BOT_BOTTLE_ESCAPE_WEAKEN", None)
    sys.path.insert(0, str(REPO))
    suite = unittest.defaultTestLoader.loadTestsFromName(MODULE)
    runner = unittest.TextTestRunner(resultclass=_Collect, verbosity=1, stream=sys.stderr)
    started = time.time()
    result = runner.run(suite)
    return {"weakened": weakened, "seconds": round(time.time() - started, 1),
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": result.rows}


def families() -> list[str]:
    sys.path.insert(0, str(REPO))
    from tests.integration._escape import FAMILIES

    return list(FAMILIES)


def cells(data: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(family, backend) -> the cell's text."""
    counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    skipped: dict[str, str] = {}
    for row in data["rows"]:
        if row["family"] == "*":  # a whole backend skipped (or failed) at once
            skipped[row["backend"]] = row["detail"] if row["outcome"] == "skipped" else f"FAILED: {row['detail']}"
            continue
        counts[(row["family"], row["backend"])][row["outcome"]] += 1
    out: dict[tuple[str, str], str] = {}
    for (family, backend), c in counts.items():
        total = sum(c.values())
        bad = c["failed"] + c["error"] + c["skipped"]
        out[(family, backend)] = f"passed ({total})" if not bad else f"**FAILED** ({bad} of {total})"
    for backend, reason in skipped.items():
        for family in families():
            out.setdefault((family, backend), "not applicable")
    return out


def table(data: dict[str, Any]) -> str:
    backends = sorted({row["backend"] for row in data["rows"]}, key=lambda b: (b != "docker", b))
    got = cells(data)
    lines = ["| attack family | " + " | ".join(backends) + " |", "|---|" + "---|" * len(backends)]
    total = Counter()
    for family in families():
        lines.append(f"| {family} | " + " | ".join(got.get((family, b), "—") for b in backends) + " |")
    for row in data["rows"]:
        if row["family"] != "*":
            total[row["backend"]] += 1
    lines.append("| **techniques** | " + " | ".join(str(total[b]) if total[b] else "—" for b in backends) + " |")
    notes = [f"- {row['backend']}: not applicable here: {row['detail']}" for row in data["rows"]
             if row["family"] == "*" and row["outcome"] == "skipped"]
    failed = [f"- {row['backend']} / {row['family']} / `{row['test']}`: {row['detail'][:200]}" for row in data["rows"]
              if row["family"] != "*" and row["outcome"] != "passed"]
    text = "\n".join(lines)
    text += f"\n\nRun {data['when']} ({data['seconds']:.0f} s), `bench/escape_report.py`.\n"
    if notes:
        text += "\n" + "\n".join(notes) + "\n"
    if failed:
        text += "\nAttacks that got out or could not run:\n\n" + "\n".join(failed) + "\n"
    return text


def write_readme(text: str) -> None:
    readme = README.read_text(encoding="utf-8")
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md has no {START} ... {END} markers")
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    README.write_text(head + START + "\n" + text.strip() + "\n" + END + tail, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weakened", action="store_true", help="run against weakened bottles (self-test)")
    parser.add_argument("--from-json", action="store_true", help="redraw the README table from the last results")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / ("escape-weakened.json" if args.weakened else "escape.json")
    if args.from_json:
        data = json.loads(path.read_text())
    else:
        data = run_suite(args.weakened)
        path.write_text(json.dumps(data, indent=2) + "\n")
    text = table(data)
    if args.weakened:
        # Every attack must have been seen to fail against the weakened bottles.
        missed = [r for r in data["rows"] if r["family"] != "*" and r["outcome"] != "failed"]
        (RESULTS / "escape-weakened.md").write_text(text)
        print(text)
        print(f"{len(missed)} attack(s) NOT seen to fail against weakened bottles" if missed
              else "every attack failed against the weakened bottles, as it must")
        for r in missed:
            print(f"  {r['family']}: {r['test']} ({r['outcome']}: {r['detail'][:160]})")
        return 1 if missed else 0
    write_readme(text)
    print(text)
    return 0 if all(r["outcome"] in ("passed", "skipped") for r in data["rows"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
