#!/usr/bin/env python3
"""Markdown tables from `selfrl demo` runs: one per run, then mean ± std over the runs.

  python3 scripts/demo_table.py runs/s0/summary.json runs/s1/summary.json runs/s2/summary.json

The last column of the mean table compares each stage with the seed-only `control` stage of the
same run (same SFT steps on the labelled seed set alone): what the unlabelled data added. Then
every seed's gains with the worst seed, and the same on eval_dev where the runs evaluated it
(`--set also_eval_dev=1`).
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

    seeds = ", ".join(str(r["seed"]) for r in runs)
    print(f"\n**per seed ({seeds}), points of accuracy; worst = the lowest seed**\n")
    print("| stage | Δ vs base | worst | Δ vs control | worst |")
    print("|---|---|---|---|---|")
    for n in names:
        d_base, d_ctrl = [], []
        for r in runs:
            by = {s["stage"]: s["accuracy"] for s in r["stages"]}
            d_base.append(100 * (by[n] - r["stages"][0]["accuracy"]))
            d_ctrl.append(100 * (by[n] - by.get("control", float("nan"))))
        j = lambda xs: ", ".join(f"{x:+.1f}" for x in xs)
        print(f"| {n} | {j(d_base)} | {min(d_base):+.1f} | {j(d_ctrl)} | {min(d_ctrl):+.1f} |")
    if all("eval_dev" in s["notes"] for r in runs for s in r["stages"]):
        print(f"\n**eval_dev (`--set also_eval_dev=1`): accuracy, mean ± std, and Δ vs base per seed**\n")
        print("| stage | accuracy | Δ vs base per seed | Δ vs control per seed |")
        print("|---|---|---|---|")
        for n in names:
            acc, d_base, d_ctrl = [], [], []
            for r in runs:
                by = {s["stage"]: s["notes"]["eval_dev"]["accuracy"] for s in r["stages"]}
                acc.append(by[n])
                d_base.append(100 * (by[n] - by[r["stages"][0]["stage"]]))
                d_ctrl.append(100 * (by[n] - by.get("control", float("nan"))))
            j = lambda xs: ", ".join(f"{x:+.1f}" for x in xs)
            print(f"| {n} | {statistics.mean(acc):.3f} ± {pstd(acc):.3f} | {j(d_base)} | {j(d_ctrl)} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
