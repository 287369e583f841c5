#!/usr/bin/env python3
"""The PyTorch side of `tg-bench gpt --config S|M|gpt2` and `tg-bench vit` (docs/performance.md): one training
step (forward, backward, AdamW) of the same models written by hand in PyTorch, on random inputs, timed like
tg-bench (two warm-up steps, then the median of --steps steps, wall and process CPU time per thread).

A reference tool, not a dependency of tapegrad: it needs PyTorch (Debian: python3-torch, run with
/usr/bin/python3). Debian's PyTorch is 1.13, which has no torch.compile and no scaled_dot_product_attention, so
this is eager mode with the attention written out (as nanoGPT's fallback path does); AdamW uses foreach=True,
its fastest CPU implementation there.

    /usr/bin/python3 bench/pytorch_step.py gpt --config gpt2 --batch 4 --seq 64 --threads 2 --steps 5
    /usr/bin/python3 bench/pytorch_step.py gpt --config S --threads 2
    /usr/bin/python3 bench/pytorch_step.py vit --threads 2

The configurations are tg-bench's: S (vocab 256, T 256, 4 layers, 4 heads, C 128, batch 8), M (256, 512, 6,
6, 384, 4), gpt2 (50257, position table 1024, 12, 12, 768, batch 4, T 64); the ViT is nn/models/vit.h's
default (28×28 images, 7×7 patches, class token, 4 pre-LN blocks of width 64 with 4 heads and an MLP of 128,
exact GELU, batch 128).
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
    def __init__(self, C, H, M=None, gelu="tanh"):
        super().__init__()
        self.H, self.gelu = H, gelu
        M = M or 4 * C
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, M), nn.Linear(M, C)

    def forward(self, x, mask=None):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (z.view(B, T, self.H, C // self.H).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.H))
        if mask is not None:
            att = att.masked_fill(mask[:, :, :T, :T] == 0, float("-inf"))
        y = (F.softmax(att, dim=-1) @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate=self.gelu))


class GPT(nn.Module):
    def __init__(self, V, P, C, H, L):
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


class ViT(nn.Module):
    def __init__(self, image=28, patch=7, channels=1, classes=10, L=4, H=4, C=64, M=128):
        super().__init__()
        self.patch, self.grid = patch, image // patch
        self.patch_embed = nn.Linear(channels * patch * patch, C)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, self.grid * self.grid + 1, C))
        self.blocks = nn.ModuleList(Block(C, H, M, gelu="none") for _ in range(L))
        self.ln_f, self.head = nn.LayerNorm(C), nn.Linear(C, classes)

    def forward(self, images, labels):
        B, Ch, P = images.shape[0], images.shape[1], self.patch
        patches = images.unfold(2, P, P).unfold(3, P, P)  # (B, Ch, g, g, P, P)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(B, self.grid * self.grid, Ch * P * P)
        x = torch.cat([self.cls_token.expand(B, -1, -1), self.patch_embed(patches)], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return F.cross_entropy(self.head(self.ln_f(x)[:, 0]), labels)


GPT_CONFIGS = {  # V, T, L, H, C, batch; position table P = T except GPT-2's 1024
    "S": (256, 256, 4, 4, 128, 8),
    "M": (256, 512, 6, 6, 384, 4),
    "gpt2": (50257, 64, 12, 12, 768, 4),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["gpt", "vit"])
    ap.add_argument("--config", choices=sorted(GPT_CONFIGS), default="S", help="gpt only")
    ap.add_argument("--batch", type=int, default=0, help="0: the configuration's")
    ap.add_argument("--seq", type=int, default=0, help="gpt only; 0: the configuration's")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    record = {"suite": a.model}
    if a.model == "gpt":
        V, T, L, H, C, batch = GPT_CONFIGS[a.config]
        batch, T = a.batch or batch, a.seq or T
        model = GPT(V=V, P=1024 if a.config == "gpt2" else T, C=C, H=H, L=L)
        record.update(config=a.config, batch=batch, seq=T)

        def inputs():
            return torch.randint(0, V, (batch, T)), torch.randint(0, V, (batch, T))
    else:
        batch = a.batch or 128
        model = ViT()
        record.update(batch=batch)

        def inputs():
            return torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, foreach=True)

    # The inputs of a few steps, drawn before any step is timed, as tg-bench does (bench/step_rounds.h,
    # kInputBatches): a step measures the model, not the random number generator.
    batches = [inputs() for _ in range(4)]
    next_batch = [0]

    def step():
        x, y = batches[next_batch[0] % len(batches)]
        next_batch[0] += 1
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)
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
    record.update({
        "framework": "pytorch %s eager" % torch.__version__, "threads": a.threads, "step_ms": step_ms,
        "cpu_ms": statistics.median(cpu), "min_step_ms": min(wall),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "loss": loss,
        "parameters": sum(p.numel() for p in model.parameters())})
    print(json.dumps(record))


if __name__ == "__main__":
    main()
