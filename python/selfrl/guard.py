"""The collapse guard of GRPO runs on metrics you give it: check a logged run, or tune the
``collapse_guard`` section of a recipe on runs you already have, with the guard the trainers use.

    import selfrl

    r = selfrl.replay_collapse_guard("runs/intuitor/metrics.jsonl", answered_agreement_drop=0.05)
    r["fired_at_step"], r["reason"]

The rules, their defaults and where the defaults come from: docs/algorithms.md ("Label-free
diagnostics and the collapse guard").
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, Iterable, NamedTuple, Union

from . import _selfrl


class CollapseVerdict(NamedTuple):
    flagged: bool  #: this step matches a rule
    fired: bool  #: ``patience`` flagged steps in a row: the guard acts now (once per run)
    reason: str  #: which rule held, with its numbers ("" when not flagged)


class CollapseGuard:
    """The guard a recipe's ``collapse_guard:`` section configures, fed one step at a time.

    Args:
        **settings: that section's keys (``warmup_steps``, ``window``, ``patience``,
            ``entropy_rise``, ``agreement_drop``, ``answered_agreement_drop``, ...), checked as
            ``selfrl train`` checks them; the rest keep the recipe defaults.
    """

    def __init__(self, **settings: Any):
        self._g = _selfrl._CollapseGuard([f"{k}={json.dumps(v)}" for k, v in settings.items()])

    def observe(self, metrics: Dict[str, Any]) -> CollapseVerdict:
        """One GRPO step's metrics as logged (``entropy``, ``self_certainty``, ``label_free/*``;
        other keys and non-numbers are ignored)."""
        numbers = {k: float(v) for k, v in metrics.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        return CollapseVerdict(*self._g.observe(numbers))

    @property
    def fired(self) -> bool:
        return self._g.fired

    @property
    def first_bad_step(self) -> int:
        """The first flagged step of the current streak (of the one that fired, once fired), 1-based
        in :meth:`observe` calls; 0 when none."""
        return self._g.first_bad_step + 1

    @property
    def settings(self) -> Dict[str, Any]:
        """Every setting, defaults included."""
        return dict(self._g.settings)

    def __repr__(self) -> str:
        return f"CollapseGuard({self.settings})"


def replay_collapse_guard(metrics: Union[str, os.PathLike, Iterable[Dict[str, Any]]],
                          **settings: Any) -> Dict[str, Any]:
    """Runs a logged GRPO run through the collapse guard (``selfrl guard RUN`` on the command line).

    Args:
        metrics: a ``metrics.jsonl`` path (or the run directory holding it), or its rows (e.g. a
            trainer's ``log_history``); the steps are the rows that carry ``entropy`` and are not
            ``eval`` / ``iteration`` lines.
        **settings: ``collapse_guard`` keys, as for :class:`CollapseGuard`.

    Returns:
        ``{"steps", "fired_at_step", "first_flagged_step", "reason", "flagged_steps"}``; steps are
        1-based over the steps, as in the demo's ``notes.collapse_guard``. ``fired_at_step`` is
        None when the guard never fired.
    """
    if isinstance(metrics, (str, os.PathLike)):
        path = os.fspath(metrics)
        if os.path.isdir(path):
            path = os.path.join(path, "metrics.jsonl")
        with open(path) as f:
            lines = [line for line in f if line.strip()]
    else:
        # NaN (e.g. certainty_agreement_auroc of a step without pairs) is not JSON: as in metrics.jsonl, null.
        lines = [json.dumps({k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()})
                 for row in metrics]
    overrides = [f"{k}={json.dumps(v)}" for k, v in settings.items()]
    return json.loads(_selfrl._replay_collapse_guard(lines, overrides))
