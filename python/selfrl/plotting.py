"""Training curves as a matplotlib figure."""

from __future__ import annotations

import json
import math
import os
from typing import Iterable, List, Optional, Sequence, Union


def read_metrics(source) -> List[dict]:
    """The lines of a run: a trainer (its log history), a TrainOutput, a run directory, a
    metrics.jsonl path, or a list of dicts."""
    if hasattr(source, "log_history"):
        return list(source.log_history)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            path = os.path.join(path, "metrics.jsonl")
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    return list(source)


_DEFAULT_KEYS = ("reward", "loss", "eval/accuracy")


def plot_metrics(run, keys: Optional[Sequence[str]] = None, title: Optional[str] = None):
    """A figure with one panel per metric (default: reward, loss and eval/accuracy where logged),
    x = the run's global step. Returns the ``matplotlib.figure.Figure``."""
    import matplotlib.pyplot as plt  # Jupyter: the inline backend; headless: Agg

    lines = read_metrics(run)
    if keys is None:
        keys = [k for k in _DEFAULT_KEYS if any(_finite(l.get(k)) for l in lines)]
        if not keys:
            keys = sorted({k for l in lines for k, v in l.items() if k not in ("step", "kind") and _finite(v)})[:3]
    if not keys:
        raise ValueError("plot_metrics: no numeric metrics in this run")
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        pts = [(l["step"], l[key]) for l in lines if _finite(l.get(key))]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if len(pts) < 30 else None, markersize=3)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)  # returned, not also drawn by pyplot's "show at cell end" in notebooks
    return fig


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
