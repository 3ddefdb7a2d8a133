#!/usr/bin/env python3
"""Cuts a demo GRPO stage's metrics.jsonl to the keys the collapse guard reads, framed by two
"iteration" lines with the eval accuracy of the base (before) and of the stage (after): the
fixtures tests/data/collapse_guard/amd_*.jsonl that CollapseGuard.DemoGuardSeparatesTheAmdDemoRuns
replays.

  python3 scripts/collapse_guard_fixture.py RUN/ttrl/metrics.jsonl RUN/summary.json ttrl OUT.jsonl
(Borda runs: RUN/intuitor of a `--set intuitor_reward=borda` run.)
"""
import json, sys
metrics, summary, stage, out = sys.argv[1:5]
acc = {s["stage"]: s["eval"]["accuracy"] if "eval" in s else s["accuracy"] for s in json.load(open(summary))["stages"]}
keys = ["entropy", "self_certainty", "label_free/majority_share", "label_free/no_answer_rate",
        "label_free/certainty_agreement_auroc", "label_free/anchor_agreement"]
with open(out, "w") as f:
    f.write(json.dumps({"step": 0, "kind": "iteration", "eval/accuracy": acc["base"]}) + "\n")
    for l in open(metrics):
        r = json.loads(l)
        if r.get("kind") == "eval":  # the demo's eval row after the steps: not a training step
            continue
        row = {"step": r["step"] + 1, "kind": "grpo"}
        for k in keys:
            if r.get(k) is not None:
                row[k] = round(r[k], 6)
        f.write(json.dumps(row) + "\n")
    f.write(json.dumps({"step": 41, "kind": "iteration", "eval/accuracy": acc[stage]}) + "\n")
