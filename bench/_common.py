"""Shared helpers for benchmarks: results as JSON beside a PNG plot, medians, timers."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "host": {"python": platform.python_version(), "machine": platform.machine(),
                                         "cpus": __import__("os").cpu_count()}, **data}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def bar_plot(name: str, title: str, labels: list[str], values: list[float], unit: str,
             targets: dict[str, float] | None = None) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed; skipping the plot (pip install 'bot-bottle[bench]')")
        return None
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bars = ax.barh(labels, values, color="#4C72B0")
    for bar, value in zip(bars, values):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:.3g} {unit}", va="center")
    for label, target in (targets or {}).items():
        ax.axvline(target, color="#C44E52", linestyle="--", linewidth=1)
        ax.text(target, len(labels) - 0.55, f" {label}", color="#C44E52", va="top", fontsize=8)  # inside the axes, clear of the title
    ax.set_title(title)
    ax.set_xlabel(unit)
    fig.tight_layout()
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
