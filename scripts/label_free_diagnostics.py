#!/usr/bin/python3
"""What the label-free signals of TTRL and Intuitor carry at a given model (issue 14, item 1).

For every item of a labelled JSONL set (prompt, answer) it samples G completions at temperature
T, takes the greedy completion, and measures what the two methods' mechanisms need:

  TTRL (consensus reward: 1 when a sample's answer equals the group majority)
    - greedy accuracy vs majority-vote accuracy (maj@G): the vote can only teach what greedy
      does not already answer, so `maj_right_greedy_wrong` is the signal and
      `maj_wrong_greedy_right` the noise;
    - reward precision: P(sample correct | reward 1), and the share of groups whose reward has
      zero variance (all samples agree: GRPO learns nothing from them).
  Intuitor (self-certainty reward: mean KL(uniform || p) over the completion's tokens)
    - within-group AUROC of self-certainty for correct vs wrong samples (0.5 = no signal),
      over the groups that hold both;
    - the Pearson correlation between self-certainty and correctness over all samples.
  Both, as a Borda-style combination (rank by vote share, ties by self-certainty) -> precision
    of the top-ranked sample.

Usage (Debian's python3 with the selfrl package installed by `make build`):
  /usr/bin/python3 scripts/label_free_diagnostics.py MODEL_DIR DATA.jsonl [--g 8] [--t 1.0] \
      [--max-items 256] [--seed 0] [--min-difficulty D] [--answer-digits N] [--pool-commuted] \
      [--json out.json]
The answer is the first run of digits in the completion (the demo's extractor, "^\\D*(\\d+)");
with --answer-digits N only a run of exactly N digits counts (the demo's length filter: the
answer width its zero-padded format fixes). --min-difficulty keeps the items of that many
digits or more (the demo's GRPO stages train on the levels above the seed set: 4).
--pool-commuted adds G samples of the commuted prompt ("Q: b+a =") to each vote, as the demo's
ReST-EM votes do (rest_pool_commuted); the other numbers stay those of the prompt's own samples.
"""

import argparse
import json
import math
import re
import statistics
import sys
from collections import Counter

import selfrl

ANSWER = re.compile(r"^\D*(\d+)")


def extract(text):
    m = ANSWER.match(text)
    return m.group(1) if m else None


def auroc(pos, neg):
    """P(a random positive scores above a random negative), ties count half."""
    if not pos or not neg:
        return None
    wins = 0.0
    for p in pos:
        for n in neg:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(pos) * len(neg))


def pearson(xs, ys):
    if len(xs) < 2:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sx = math.sqrt(sum((x - mx) ** 2 for x in xs))
    sy = math.sqrt(sum((y - my) ** 2 for y in ys))
    if sx == 0 or sy == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / (sx * sy)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("--g", type=int, default=8, help="samples per prompt (num_generations)")
    ap.add_argument("--t", type=float, default=1.0, help="sampling temperature")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--max-items", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-difficulty", type=int, default=0, help="keep items whose 'difficulty' is at least this")
    ap.add_argument("--answer-digits", type=int, default=0, help="length filter: answers must have this many digits")
    ap.add_argument("--pool-commuted", action="store_true",
                    help="the vote (and TTRL's reward) pools G more samples of the commuted prompt 'Q: b+a ='")
    ap.add_argument("--json", help="write the numbers here too")
    args = ap.parse_args()

    rows = [json.loads(line) for line in open(args.data) if line.strip()]
    rows = [r for r in rows if r.get("difficulty", 0) >= args.min_difficulty][: args.max_items]
    global ANSWER
    if args.answer_digits > 0:
        ANSWER = re.compile(r"^\D*(\d{%d})(?!\d)" % args.answer_digits)
    if not rows:
        sys.exit(f"{args.data}: no rows")
    model = selfrl.CausalLM.from_pretrained(args.model)
    tok = selfrl.Tokenizer.from_pretrained(args.model)
    engine = selfrl.RolloutEngine(model, tok)
    prompts = [r["prompt"] for r in rows]
    greedy = engine.generate(prompts, selfrl.SamplingParams(n=1, max_tokens=args.max_new_tokens, temperature=0.0))
    sampled = engine.generate(
        prompts, selfrl.SamplingParams(n=args.g, max_tokens=args.max_new_tokens, temperature=args.t, seed=args.seed))

    commuted = [[] for _ in rows]
    if args.pool_commuted:
        swapped = [re.sub(r"^(.*?)(\S+)\+(\S+)( =.*)$", r"\1\3+\2\4", p) for p in prompts]
        commuted = [[extract(c.text) for c in r.outputs] for r in engine.generate(
            swapped, selfrl.SamplingParams(n=args.g, max_tokens=args.max_new_tokens, temperature=args.t,
                                           seed=args.seed + 1))]
    n = len(rows)
    greedy_right = maj_right = mrgw = mwgr = zero_var = 0
    reward1_right = reward1 = 0
    sample_right = 0
    aurocs, certs, corrects = [], [], []
    borda_right = 0
    for row, g, s, extra in zip(rows, greedy, sampled, commuted):
        gold = str(row["answer"])
        g_ok = extract(g.outputs[0].text) == gold
        answers = [extract(c.text) for c in s.outputs]
        votes = Counter(a for a in answers + extra if a is not None)
        majority = votes.most_common(1)[0][0] if votes else None
        m_ok = majority == gold
        greedy_right += g_ok
        maj_right += m_ok
        mrgw += m_ok and not g_ok
        mwgr += g_ok and not m_ok
        rewards = [1.0 if a is not None and a == majority else 0.0 for a in answers]
        zero_var += len(set(rewards)) == 1
        ok = [a == gold for a in answers]
        sample_right += sum(ok)
        reward1 += sum(rewards)
        reward1_right += sum(1 for r, o in zip(rewards, ok) if r == 1.0 and o)
        # Intuitor's reward: the per-token self-certainty averaged over the completion.
        sc = [statistics.fmean(c.self_certainty) if c.self_certainty else 0.0 for c in s.outputs]
        certs += sc
        corrects += [1.0 if o else 0.0 for o in ok]
        a = auroc([x for x, o in zip(sc, ok) if o], [x for x, o in zip(sc, ok) if not o])
        if a is not None:
            aurocs.append(a)
        # Borda-style: the most voted answer, ties broken by the higher self-certainty.
        best = max(range(len(answers)), key=lambda i: (votes.get(answers[i], 0) if answers[i] else -1, sc[i]))
        borda_right += ok[best]

    out = {
        "model": args.model, "data": args.data, "items": n, "min_difficulty": args.min_difficulty,
        "answer_digits": args.answer_digits, "pool_commuted": args.pool_commuted, "G": args.g, "temperature": args.t, "seed": args.seed,
        "greedy_accuracy": greedy_right / n,
        "majority_accuracy": maj_right / n,
        "sample_accuracy": sample_right / (n * args.g),
        "maj_right_greedy_wrong": mrgw / n,
        "maj_wrong_greedy_right": mwgr / n,
        "ttrl_reward_precision": reward1_right / reward1 if reward1 else None,
        "ttrl_zero_variance_groups": zero_var / n,
        "intuitor_within_group_auroc": statistics.fmean(aurocs) if aurocs else None,
        "intuitor_groups_with_both": len(aurocs) / n,
        "self_certainty_correctness_pearson": pearson(certs, corrects),
        "borda_top_precision": borda_right / n,
    }
    for k, v in out.items():
        print(f"{k:36s} {v:.4f}" if isinstance(v, float) else f"{k:36s} {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
