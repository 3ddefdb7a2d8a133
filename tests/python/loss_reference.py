#!/usr/bin/python3
"""Independent reference for libselfrl's losses and advantages, written from TRL's formulas
(GRPOTrainer._compute_loss / _generate_and_score_completions, DPOTrainer loss types) and the
ScPO paper, on Debian's python3-torch, in float64 with autograd for the gradients.

  loss_reference.py INPUTS.safetensors OUTPUTS.safetensors

INPUTS holds logps, old_logps, ref_logps, mask, advantages (GRPO), rewards_per_func (with NaN),
chosen/rejected/ref log-probs and lengths, vote weights (DPO/ScPO). OUTPUTS gets for every case
name `<case>.loss` and `<case>.grad` (d loss / d policy log-probs).
"""
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from safetensors_reference import read, write  # noqa: E402


def grpo(t, loss_type, level, beta, eps=0.2, eps_high=0.28, delta=None, max_len=16, items=None, procs=1, ga=1):
    logps = t["logps"].clone().requires_grad_(True)
    old, ref, mask, adv = t["old_logps"], t["ref_logps"], t["mask"], t["advantages"]
    log_ratio = logps - old
    if level == "token":
        lw = log_ratio
    else:
        lw = ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).unsqueeze(-1)
    c1 = torch.exp(lw)
    c2 = torch.clamp(c1, 1 - eps, 1 + eps_high)
    if delta is not None:
        c1 = torch.clamp(c1, max=delta)
    a = adv.unsqueeze(1)
    ptl = -torch.min(c1 * a, c2 * a)
    if beta != 0:
        kl = torch.exp(ref - logps) - (ref - logps) - 1
        ptl = ptl + beta * kl
    if loss_type == "grpo":
        loss = ((ptl * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean() / ga
    elif loss_type == "bnpo":
        loss = (ptl * mask).sum() / mask.sum().clamp(min=1.0) / ga
    elif loss_type == "dr_grpo":
        loss = (ptl * mask).sum() / (logps.size(0) * max_len) / ga
    else:
        n = items if items is not None else mask.sum()
        loss = (ptl * mask).sum() / (n / procs)
    loss.backward()
    return loss.detach(), logps.grad


def advantages(t, scale, G=4):
    r = t["rewards_per_func"]
    w = torch.tensor([1.0, 0.5], dtype=torch.float64)
    finite = torch.isfinite(r)
    unscorable = ~finite.any(1)
    total = torch.where(finite, r * w, torch.zeros_like(r)).sum(1)
    total[unscorable] = float("nan")
    out = torch.zeros_like(total)
    g = total.view(-1, G)
    means, stds = [], []
    for row in g:
        v = row[torch.isfinite(row)]
        m = v.mean() if len(v) else torch.tensor(0.0, dtype=torch.float64)
        s = v.std() if len(v) >= 2 else torch.tensor(0.0, dtype=torch.float64)  # Bessel
        means.append(m)
        stds.append(s)
    mean = torch.stack(means).repeat_interleave(G)
    std = torch.stack(stds).repeat_interleave(G)
    out = total - mean
    if scale == "group":
        out = out / (std + 1e-4)
    elif scale == "batch":
        out = out / (total[torch.isfinite(total)].std() + 1e-4)
    out[unscorable] = 0.0
    return out


def dpo(t, loss_types, beta=0.1, eps=0.0, weights=None):
    pc = t["chosen_logps"].clone().requires_grad_(True)
    pr = t["rejected_logps"].clone().requires_grad_(True)
    clr = pc - t["ref_chosen_logps"]
    rlr = pr - t["ref_rejected_logps"]
    d = clr - rlr
    F = torch.nn.functional
    total = 0
    for k, lt in enumerate(loss_types):
        w = 1.0 if weights is None else weights[k]
        if lt == "sigmoid":
            l = -(1 - eps) * F.logsigmoid(beta * d) - eps * F.logsigmoid(-beta * d)
        elif lt == "hinge":
            l = torch.relu(1 - beta * d)
        elif lt == "ipo":
            l = (clr / t["chosen_lengths"] - rlr / t["rejected_lengths"] - 1 / (2 * beta)) ** 2
        elif lt == "robust":
            l = (-(1 - eps) * F.logsigmoid(beta * d) + eps * F.logsigmoid(-beta * d)) / (1 - 2 * eps)
        elif lt == "sft":
            l = -pc / t["chosen_lengths"]
        total = total + w * l.mean()
    total.backward()
    return total.detach(), torch.stack([g if g is not None else torch.zeros_like(pc) for g in (pc.grad, pr.grad)])


def scpo(t, beta=0.5, alpha=1.0):
    pc = t["chosen_logps"].clone().requires_grad_(True)
    pr = t["rejected_logps"].clone().requires_grad_(True)
    w = t["vote_weights"]
    d = (pc - t["ref_chosen_logps"]) - (pr - t["ref_rejected_logps"])
    l = -w * torch.nn.functional.logsigmoid(beta * d) + alpha * w * (-pc / t["chosen_lengths"])
    loss = l.mean()
    loss.backward()
    return loss.detach(), torch.stack([pc.grad, pr.grad])


def sft(t):
    logps = t["logps"].clone().requires_grad_(True)
    loss = -(logps * t["mask"]).sum() / t["mask"].sum()
    loss.backward()
    return loss.detach(), logps.grad


def main():
    t, _ = read(sys.argv[1])
    out = {}

    def put(name, pair):
        out[name + ".loss"] = pair[0].reshape(1)
        out[name + ".grad"] = pair[1].contiguous()

    for lt in ["grpo", "bnpo", "dr_grpo", "dapo"]:
        for level in ["token", "sequence"]:
            for beta in [0.0, 0.04]:
                put(f"grpo.{lt}.{level}.{beta}", grpo(t, lt, level, beta))
    put("grpo.dapo.token.delta", grpo(t, "dapo", "token", 0.0, delta=1.5))
    put("grpo.dapo.token.items", grpo(t, "dapo", "token", 0.0, items=200.0, procs=2))
    put("grpo.bnpo.token.ga", grpo(t, "bnpo", "token", 0.04, ga=4))
    for scale in ["group", "batch", "none"]:
        out[f"adv.{scale}"] = advantages(t, scale)
    for lt in ["sigmoid", "hinge", "ipo", "robust", "sft"]:
        put(f"dpo.{lt}", dpo(t, [lt], eps=0.2 if lt == "robust" else 0.0))
    put("dpo.cdpo", dpo(t, ["sigmoid"], eps=0.1))
    put("dpo.sigmoid+sft", dpo(t, ["sigmoid", "sft"], weights=[1.0, 0.3]))
    put("scpo", scpo(t))
    put("sft", sft(t))
    write(sys.argv[2], out)


if __name__ == "__main__":
    main()
