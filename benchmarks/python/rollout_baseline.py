#!/usr/bin/python3
"""Baseline for benchmarks/rollout/rollout.cpp: the same ~25M-parameter Llama in a plain
PyTorch loop (Debian python3-torch 1.13) with a preallocated KV cache, greedy decoding and the
same per-token work as RolloutEngine (log-softmax at T=1, chosen-token logprob, entropy,
self-certainty). Prints one JSON line.

  /usr/bin/python3 benchmarks/python/rollout_baseline.py --batch 8 --prompt-len 64 --new-tokens 64 --runs 3 --threads 1
"""
import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn.functional as F

V, H, I, L, NH = 8192, 512, 1408, 8, 8
D = H // NH


class RMSNorm(torch.nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        return self.weight * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


def rotate_half(x):
    return torch.cat((-x[..., D // 2:], x[..., :D // 2]), -1)


class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.q = torch.nn.Linear(H, H, bias=False)
        self.k = torch.nn.Linear(H, H, bias=False)
        self.v = torch.nn.Linear(H, H, bias=False)
        self.o = torch.nn.Linear(H, H, bias=False)
        self.gate = torch.nn.Linear(H, I, bias=False)
        self.up = torch.nn.Linear(H, I, bias=False)
        self.down = torch.nn.Linear(I, H, bias=False)
        self.n1, self.n2 = RMSNorm(H), RMSNorm(H)

    def forward(self, x, cos, sin, kc, vc, pos, mask):
        B, T, _ = x.shape
        h = self.n1(x)
        q = self.q(h).view(B, T, NH, D).transpose(1, 2)
        k = self.k(h).view(B, T, NH, D).transpose(1, 2)
        v = self.v(h).view(B, T, NH, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        kc[:, :, pos:pos + T] = k
        vc[:, :, pos:pos + T] = v
        k, v = kc[:, :, :pos + T], vc[:, :, :pos + T]
        s = q @ k.transpose(2, 3) / math.sqrt(D)
        if mask is not None:
            s = s + mask
        p = torch.softmax(s, -1, dtype=torch.float32).to(q.dtype)
        x = x + self.o((p @ v).transpose(1, 2).reshape(B, T, H))
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(V, H)
        self.layers = torch.nn.ModuleList(Layer() for _ in range(L))
        self.norm = RMSNorm(H)
        self.lm_head = torch.nn.Linear(H, V, bias=False)
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)
        self.inv_freq = 1.0 / (10000.0 ** (torch.arange(0, D, 2).float() / D))

    def forward(self, ids, caches, pos):
        B, T = ids.shape
        positions = torch.arange(pos, pos + T).float()
        freqs = torch.outer(positions, self.inv_freq)
        emb = torch.cat((freqs, freqs), -1)
        dt = self.embed.weight.dtype
        cos, sin = emb.cos()[None, None].to(dt), emb.sin()[None, None].to(dt)
        mask = None
        if T > 1:
            mask = torch.full((T, pos + T), float("-inf")).triu(pos + 1)
        x = self.embed(ids)
        for layer, (kc, vc) in zip(self.layers, caches):
            x = layer(x, cos, sin, kc, vc, pos, mask)
        return self.lm_head(self.norm(x[:, -1]))


def generate(model, prompts, n):
    """Returns (prefill seconds, decode seconds): the split RolloutEngine::last_timings() makes."""
    t0 = time.perf_counter()
    B, P = prompts.shape
    dt = model.embed.weight.dtype
    caches = [(torch.empty(B, NH, P + n, D, dtype=dt), torch.empty(B, NH, P + n, D, dtype=dt)) for _ in range(L)]
    logits = model(prompts, caches, 0)
    t1 = time.perf_counter()
    out = []
    for step in range(n):
        logp = torch.log_softmax(logits.float(), -1)
        tok = logits.argmax(-1)
        lp = logp.gather(1, tok[:, None])
        ent = -(logp.exp() * logp).sum(-1)
        sc = -logp.mean(-1) - math.log(V)
        out.append((tok, lp, ent, sc))
        if step + 1 == n:
            break
        logits = model(tok[:, None], caches, P + step)
    toks = torch.stack([o[0] for o in out], 1).tolist()  # the engine hands tokens back as lists too
    return t1 - t0, time.perf_counter() - t1


def weight_stream_floor(model, batch, n):
    """Decode tok/s if a step did nothing but stream every weight matrix once (x @ W.T for each
    Linear of the model, the LM head included, no attention, norms or sampling): the ceiling any
    implementation on this LibTorch reaches at this batch size."""
    mats = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
    xs = {w.shape[1]: torch.randn(batch, w.shape[1], dtype=w.dtype) for w in mats}
    t0 = time.perf_counter()
    for _ in range(n):
        for w in mats:
            F.linear(xs[w.shape[1]], w)
    return batch * n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--floor", action="store_true", help="measure the weight-streaming floor instead (impl \"floor\")")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dtype = getattr(torch, a.dtype)
    model = Model().to(dtype)
    params = sum(p.numel() for p in model.parameters())
    prompts = torch.tensor([[(b * 131 + t * 17) % V for t in range(a.prompt_len)] for b in range(a.batch)])
    if a.floor:
        with torch.inference_mode():
            weight_stream_floor(model, a.batch, 2)
            rates = [weight_stream_floor(model, a.batch, a.new_tokens) for _ in range(a.runs)]
        print(json.dumps({"impl": "floor", "params": params, "batch": a.batch, "new_tokens": a.new_tokens,
                          "threads": a.threads, "runs": a.runs, "dtype": a.dtype, "prefill_tok_s": 0.0,
                          "decode_tok_s": statistics.median(rates), "total_s": 0.0,
                          "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))
        return
    with torch.inference_mode():
        generate(model, prompts, 2)
        prefill, decode, total = [], [], []
        for _ in range(a.runs):
            tp, td = generate(model, prompts, a.new_tokens)
            prefill.append(a.batch * a.prompt_len / tp)
            decode.append(a.batch * a.new_tokens / td)
            total.append(tp + td)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "python", "params": params, "batch": a.batch, "prompt_len": a.prompt_len,
                      "new_tokens": a.new_tokens, "threads": a.threads, "runs": a.runs, "dtype": a.dtype,
                      "prefill_tok_s": statistics.median(prefill), "decode_tok_s": statistics.median(decode),
                      "total_s": statistics.median(total),
                      "peak_rss_mb": peak}))


if __name__ == "__main__":
    main()
