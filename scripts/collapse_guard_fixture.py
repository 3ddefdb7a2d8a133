#!/usr/bin/env python3
"""Cuts demo GRPO stages' metrics.jsonl to the signals the collapse guard reads, for the replay
tests in tests/unit/trainers/test_label_free.cpp.

One stage, one file (tests/data/collapse_guard/amd_*.jsonl, CollapseGuard.DemoGuardSeparatesTheAmdDemoRuns):
the steps framed by two "iteration" lines with the eval accuracy of the base (before) and of the
stage (after):

  python3 scripts/collapse_guard_fixture.py RUN/ttrl/metrics.jsonl RUN/summary.json ttrl OUT.jsonl
(Borda runs: RUN/intuitor of a `--set intuitor_reward=borda` run.)

Many stages, one line each (tests/data/collapse_guard/runs80.jsonl, CollapseGuard.SeparatesThe80StepRuns):
{"name", "before", "after" (eval_test accuracy), "signals": {metric: [value per step]}}, values
rounded to 5 decimals (null where a step did not log the metric):

  python3 scripts/collapse_guard_fixture.py --runs OUT.jsonl NAME=RUN:STAGE [NAME=RUN:STAGE ...]
"""
import json, sys

KEYS = ["entropy", "self_certainty", "label_free/majority_share", "label_free/no_answer_rate",
        "label_free/certainty_agreement_auroc", "label_free/anchor_agreement"]
# The compact form keeps what the default rules and the anchor rule read.
COMPACT_KEYS = ["entropy", "label_free/majority_share", "label_free/no_answer_rate", "label_free/anchor_agreement"]


def accuracies(summary):
    return {s["stage"]: s["eval"]["accuracy"] if "eval" in s else s["accuracy"]
            for s in json.load(open(summary))["stages"]}


def training_rows(metrics):
    # The demo's eval row after the steps is not a training step.
    return [r for r in map(json.loads, open(metrics)) if r.get("kind") != "eval"]


def one_stage(metrics, summary, stage, out):
    acc = accuracies(summary)
    rows = training_rows(metrics)
    with open(out, "w") as f:
        f.write(json.dumps({"step": 0, "kind": "iteration", "eval/accuracy": acc["base"]}) + "\n")
        for r in rows:
            row = {"step": r["step"] + 1, "kind": "grpo"}
            for k in KEYS:
                if r.get(k) is not None:
                    row[k] = round(r[k], 6)
            f.write(json.dumps(row) + "\n")
        f.write(json.dumps({"step": len(rows) + 1, "kind": "iteration", "eval/accuracy": acc[stage]}) + "\n")


def many_stages(out, specs):
    with open(out, "w") as f:
        for spec in specs:
            name, where = spec.split("=", 1)
            run, stage = where.rsplit(":", 1)
            acc = accuracies(f"{run}/summary.json")
            stages = {s["stage"]: s for s in json.load(open(f"{run}/summary.json"))["stages"]}
            before = acc[stages[stage].get("from") or "base"]
            rows = training_rows(f"{run}/{stage}/metrics.jsonl")
            signals = {k: [None if r.get(k) is None else round(r[k], 5) for r in rows] for k in COMPACT_KEYS}
            f.write(json.dumps({"name": name, "before": before, "after": acc[stage], "signals": signals},
                               separators=(",", ":")) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "--runs":
        many_stages(sys.argv[2], sys.argv[3:])
    else:
        one_stage(*sys.argv[1:5])
