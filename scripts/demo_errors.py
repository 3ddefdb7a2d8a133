#!/usr/bin/python3
"""Where a demo model's greedy answers go wrong: the demo's addition items by kind.

For every item of a demo split (runs/demo/data/eval_dev.jsonl, ...) with at least --min-digits
digits, the model answers greedily; the items are grouped by difficulty (digits of the longer
operand), by the number of digits of the sum, and by the longest run of carries, and each group
reports how many items it has, how many are wrong, and how many of those answers have the wrong
length (the demo's answers always have width + 1 digits). --show prints the wrong items.

Usage (Debian's python3 with the selfrl package installed by `make build`):
  /usr/bin/python3 scripts/demo_errors.py runs/demo/rest_em_4 runs/demo/data/eval_dev.jsonl [--show]
"""

import argparse
import json
import re
from collections import Counter

import selfrl

ANSWER = re.compile(r"^\D*(\d+)")  # the demo's extractor: the first run of digits


def longest_carry_chain(a, b):
    chain = longest = carry = 0
    while a or b or carry:
        carry = (a % 10 + b % 10 + carry) // 10
        chain = chain + 1 if carry else 0
        longest = max(longest, chain)
        a, b = a // 10, b // 10
    return longest


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("--min-digits", type=int, default=4)
    ap.add_argument("--show", action="store_true", help="print every wrong item")
    args = ap.parse_args()

    rows = [json.loads(line) for line in open(args.data) if line.strip()]
    rows = [r for r in rows if r["difficulty"] >= args.min_digits]
    model = selfrl.CausalLM.from_pretrained(args.model)
    engine = selfrl.RolloutEngine(model, selfrl.Tokenizer.from_pretrained(args.model))
    outs = engine.generate([r["prompt"] for r in rows], selfrl.SamplingParams(n=1, max_tokens=16, temperature=0.0))

    total, wrong, wrong_length = Counter(), Counter(), Counter()
    for row, out in zip(rows, outs):
        m = ANSWER.match(out.outputs[0].text)
        got = m.group(1) if m else ""
        key = (row["difficulty"], len(str(row["a"] + row["b"])), min(longest_carry_chain(row["a"], row["b"]), 3))
        total[key] += 1
        if got != row["answer"]:
            wrong[key] += 1
            wrong_length[key] += len(got) != len(row["answer"])
            if args.show:
                print(f"{row['a']} + {row['b']}: gold {row['answer']}, model {got!r}")
    print("digits  sum digits  longest carry run (3 = 3+)  items  wrong  of which wrong length")
    for key in sorted(total):
        d, s, c = key
        print(f"{d:6d}  {s:10d}  {c:26d}  {total[key]:5d}  {wrong[key]:5d}  {wrong_length[key]:5d}")


if __name__ == "__main__":
    main()
