#!/usr/bin/env python3
"""Sums a LibTorch profiler trace (bench_rollout --profile FILE) per operator: total
milliseconds, calls and share of the traced time, largest first. Nested operators are
counted in their parents too (aten::matmul includes its aten::mm), so shares overlap.

    python3 benchmarks/rollout/profile_summary.py trace.json [--top 25]
"""
import argparse
import collections
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    with open(args.trace) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    total_us = collections.Counter()
    calls = collections.Counter()
    begin, end = float("inf"), 0.0
    for e in events:
        if e.get("ph") != "X":
            continue
        total_us[e["name"]] += e["dur"]
        calls[e["name"]] += 1
        begin = min(begin, e["ts"])
        end = max(end, e["ts"] + e["dur"])
    span = max(end - begin, 1.0)
    print(f"traced span {span / 1000:.1f} ms")
    print(f"{'operator':40s} {'ms':>10s} {'calls':>8s} {'share':>7s}")
    for name, us in total_us.most_common(args.top):
        print(f"{name:40s} {us / 1000:10.1f} {calls[name]:8d} {us / span:7.1%}")


if __name__ == "__main__":
    main()
