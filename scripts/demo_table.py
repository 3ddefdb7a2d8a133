#!/usr/bin/env python3
"""Markdown tables from `selfrl demo` runs: one per run, then mean ± std over the runs.

  python3 scripts/demo_table.py runs/s0/summary.json runs/s1/summary.json runs/s2/summary.json

The last column of the mean table compares each stage with the seed-only `control` stage of the
same run (same SFT steps on the labelled seed set alone): what the unlabelled data added.
"""
import json
import statistics
import sys


def pstd(xs):
    return statistics.pstdev(xs) if len(xs) > 1 else 0.0


def main(paths):
    runs = [json.load(open(p)) for p in paths]
    for p, r in zip(paths, runs):
        print(f"**seed {r['seed']}** (`{p}`, total {r['total_seconds']:.0f} s, eval on {r['eval_set']})\n")
        print("| stage | from | accuracy | maj@k | pass@k | self-knowledge F1 | yes rate | acc by digits | train s | eval s |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for s in r["stages"]:
            by = "/".join(f"{v:.2f}" for _, v in sorted(s["accuracy_by_difficulty"].items()))
            print(f"| {s['stage']} | {s['from'] or '-'} | {s['accuracy']:.3f} | {s['maj_at_k']:.3f} | {s['pass_at_k']:.3f} | "
                  f"{s['self_knowledge_f1']:.3f} | {s['yes_rate']:.2f} | {by} | {s['train_seconds']:.0f} | {s['eval_seconds']:.0f} |")
        print()
    names = [s["stage"] for s in runs[0]["stages"]]
    print(f"**mean ± std (population, n = {len(runs)})**\n")
    print("| stage | accuracy | maj@k | self-knowledge F1 | Δ accuracy vs base | Δ accuracy vs control |")
    print("|---|---|---|---|---|---|")
    for n in names:
        rows = [next(s for s in r["stages"] if s["stage"] == n) for r in runs]
        base = [r["stages"][0]["accuracy"] for r in runs]
        ctrl = [next((s["accuracy"] for s in r["stages"] if s["stage"] == "control"), float("nan")) for r in runs]
        acc = [x["accuracy"] for x in rows]
        d_base = [a - b for a, b in zip(acc, base)]
        d_ctrl = [a - c for a, c in zip(acc, ctrl)]
        f = lambda xs, sign="": f"{statistics.mean(xs):{sign}.3f} ± {pstd(xs):.3f}"
        print(f"| {n} | {f(acc)} | {f([x['maj_at_k'] for x in rows])} | {f([x['self_knowledge_f1'] for x in rows])} | "
              f"{f(d_base, '+')} | {f(d_ctrl, '+')} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
