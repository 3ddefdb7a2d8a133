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
import os
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Union

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
        overrides = [f"collapse_guard.{k}={json.dumps(v)}" for k, v in settings.items()]
        self._g = _selfrl._CollapseGuard(overrides)

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


def _training_rows(metrics: Union[str, os.PathLike, Iterable[Dict[str, Any]]]) -> List[Dict[str, Any]]:
    if isinstance(metrics, (str, os.PathLike)):
        with open(metrics) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    else:
        rows = list(metrics)
    # The steps are the lines with the policy's entropy: not eval or iteration lines.
    return [r for r in rows if "entropy" in r and r.get("kind") not in ("eval", "iteration")]


def replay_collapse_guard(metrics: Union[str, os.PathLike, Iterable[Dict[str, Any]]],
                          **settings: Any) -> Dict[str, Any]:
    """Runs a logged GRPO run through :class:`CollapseGuard`.

    Args:
        metrics: a ``metrics.jsonl`` path, or its rows (e.g. a trainer's ``log_history``); the steps
            are the rows that carry ``entropy``.
        **settings: ``collapse_guard`` keys, as for :class:`CollapseGuard`.

    Returns:
        ``{"fired_at_step", "first_flagged_step", "reason", "flagged_steps", "steps"}``; steps are
        1-based in the order of the rows, as in the demo's ``notes.collapse_guard``.
        ``fired_at_step`` is None when the guard never fired.
    """
    guard = CollapseGuard(**settings)
    fired_at: Optional[int] = None
    first: Optional[int] = None
    reason = ""
    flagged: List[int] = []
    rows = _training_rows(metrics)
    for i, row in enumerate(rows, start=1):
        v = guard.observe(row)
        if v.flagged:
            flagged.append(i)
        if v.fired:
            fired_at, first, reason = i, guard.first_bad_step, v.reason
    return {"fired_at_step": fired_at, "first_flagged_step": first, "reason": reason,
            "flagged_steps": flagged, "steps": len(rows)}
