#!/usr/bin/env python3
"""The PyTorch side of `tg-bench gpt --config gpt2` (docs/performance.md, "GPT-2 124M"): one training step
(forward, backward, AdamW) of GPT-2 small written by hand in PyTorch, on random tokens, timed like tg-bench
(two warm-up steps, then the median of --steps steps, wall and process CPU time per thread).

A reference tool, not a dependency of tapegrad: it needs PyTorch (Debian: python3-torch, run with
/usr/bin/python3). Debian's PyTorch is 1.13, which has no torch.compile and no scaled_dot_product_attention, so
this is eager mode with the attention written out (as nanoGPT's fallback path does); AdamW uses foreach=True,
its fastest CPU implementation there.

    /usr/bin/python3 bench/pytorch_gpt2.py --batch 4 --seq 64 --threads 2 --steps 5
"""

import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x, mask):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (z.view(B, T, self.H, C // self.H).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.H))
        att = F.softmax(att.masked_fill(mask[:, :, :T, :T] == 0, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, V=50257, P=1024, C=768, H=12, L=12):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(P, C)
        self.h = nn.ModuleList(Block(C, H) for _ in range(L))
        self.ln_f = nn.LayerNorm(C)
        self.register_buffer("mask", torch.tril(torch.ones(P, P)).view(1, 1, P, P))
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for block in self.h:
            x = block(x, self.mask)
        logits = self.ln_f(x) @ self.wte.weight.T  # tied head
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = GPT2()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, foreach=True)
    V = 50257

    def step():
        idx = torch.randint(0, V, (a.batch, a.seq))
        targets = torch.randint(0, V, (a.batch, a.seq))
        opt.zero_grad(set_to_none=True)
        loss = model(idx, targets)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(2):
        step()
    wall, cpu = [], []
    for _ in range(a.steps):
        w0, c0 = time.perf_counter(), time.process_time()
        loss = step()
        wall.append(1e3 * (time.perf_counter() - w0))
        cpu.append(1e3 * (time.process_time() - c0) / a.threads)
    step_ms = statistics.median(wall)
    print(json.dumps({
        "suite": "gpt", "config": "gpt2", "framework": "pytorch %s eager" % torch.__version__, "threads": a.threads,
        "batch": a.batch, "seq": a.seq, "step_ms": step_ms, "cpu_ms": statistics.median(cpu),
        "tokens_per_s": a.batch * a.seq / (step_ms * 1e-3),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "loss": loss,
        "parameters": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main()
