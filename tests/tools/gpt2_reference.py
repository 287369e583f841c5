#!/usr/bin/env python3
"""Writes tests/fixtures/gpt2_hf: a small random GPT-2 in Hugging Face's layout and the logits of a GPT-2
written by hand in PyTorch, for tests/test_gpt2_hf.cpp ("a hand-written PyTorch GPT-2 agrees").

A reference tool, not a dependency of tapegrad: it needs PyTorch (Debian: python3-torch) and nothing else
(no transformers, no safetensors package: the file format is simple enough to write here). Run it from the
repository root:

    python3 tests/tools/gpt2_reference.py tests/fixtures/gpt2_hf

The model follows Hugging Face's GPT2LMHeadModel exactly, as code, not as a library call:
    x = wte[ids] + wpe[0..T-1]
    for each block:  x = x + c_proj(attn(c_attn(ln_1(x))))      Conv1D: y = x @ W + b, W stored (in, out)
                     x = x + mlp.c_proj(gelu_new(mlp.c_fc(ln_2(x))))
    logits = ln_f(x) @ wte.T                                      LM head tied to wte
with causal softmax attention scaled by 1/sqrt(D), LayerNorm eps 1e-5 and gelu_new(x) =
0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). The weights are rounded to float16 and stored as F16 (the
dtype Hugging Face often ships); the forward pass runs in float64 on those rounded values.
"""

import json
import math
import struct
import sys
from pathlib import Path

import torch

V, P, C, H, L = 67, 16, 24, 3, 2  # vocab, positions, width, heads (D = 8), layers
B, T = 2, 10
SEED = 20


def random_weights(gen):
    """Hugging Face's names and shapes, rounded to float16."""
    def draw(shape, center, spread):
        t = center + spread * (2 * torch.rand(shape, generator=gen, dtype=torch.float64) - 1)
        return t.to(torch.float16)

    w = {"wte.weight": draw((V, C), 0, 0.5), "wpe.weight": draw((P, C), 0, 0.3)}
    for i in range(L):
        h = f"h.{i}."
        w[h + "ln_1.weight"] = draw((C,), 1, 0.3)
        w[h + "ln_1.bias"] = draw((C,), 0, 0.2)
        w[h + "attn.c_attn.weight"] = draw((C, 3 * C), 0, 0.4)
        w[h + "attn.c_attn.bias"] = draw((3 * C,), 0, 0.2)
        w[h + "attn.c_proj.weight"] = draw((C, C), 0, 0.4)
        w[h + "attn.c_proj.bias"] = draw((C,), 0, 0.2)
        w[h + "ln_2.weight"] = draw((C,), 1, 0.3)
        w[h + "ln_2.bias"] = draw((C,), 0, 0.2)
        w[h + "mlp.c_fc.weight"] = draw((C, 4 * C), 0, 0.4)
        w[h + "mlp.c_fc.bias"] = draw((4 * C,), 0, 0.2)
        w[h + "mlp.c_proj.weight"] = draw((4 * C, C), 0, 0.3)
        w[h + "mlp.c_proj.bias"] = draw((C,), 0, 0.2)
    w["ln_f.weight"] = draw((C,), 1, 0.3)
    w["ln_f.bias"] = draw((C,), 0, 0.2)
    return w


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def layer_norm(x, weight, bias):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), weight, bias, eps=1e-5)


def gpt2_logits(w, ids):
    w = {k: v.to(torch.float64) for k, v in w.items()}
    b, t = ids.shape
    d = C // H
    x = w["wte.weight"][ids] + w["wpe.weight"][:t]
    mask = torch.tril(torch.ones(t, t, dtype=torch.bool))
    for i in range(L):
        h = f"h.{i}."
        a = layer_norm(x, w[h + "ln_1.weight"], w[h + "ln_1.bias"])
        qkv = a @ w[h + "attn.c_attn.weight"] + w[h + "attn.c_attn.bias"]  # (B, T, 3C)
        q, k, v = qkv.split(C, dim=2)
        q, k, v = (z.view(b, t, H, d).transpose(1, 2) for z in (q, k, v))  # (B, H, T, D)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(d)
        scores = scores.masked_fill(~mask, float("-inf"))
        y = torch.softmax(scores, dim=-1) @ v  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(b, t, C)
        x = x + y @ w[h + "attn.c_proj.weight"] + w[h + "attn.c_proj.bias"]
        m = layer_norm(x, w[h + "ln_2.weight"], w[h + "ln_2.bias"])
        m = gelu_new(m @ w[h + "mlp.c_fc.weight"] + w[h + "mlp.c_fc.bias"])
        x = x + m @ w[h + "mlp.c_proj.weight"] + w[h + "mlp.c_proj.bias"]
    x = layer_norm(x, w["ln_f.weight"], w["ln_f.bias"])
    return x @ w["wte.weight"].T  # (B, T, V)


def write_safetensors(path, tensors, prefix):
    """The safetensors layout: u64 header length, JSON header (padded to 8 bytes), then the raw data."""
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        data = t.contiguous().numpy().tobytes() if hasattr(t, "numpy") else bytes(t)
        header[prefix + name] = {"dtype": "F16", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for chunk in chunks:
            f.write(chunk)


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/gpt2_hf")
    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)
    w = random_weights(gen)
    ids = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.randint(0, V, (B, T), generator=gen)
    logits = gpt2_logits(w, ids)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1)).item()

    config = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": V, "n_positions": P,
              "n_ctx": P, "n_embd": C, "n_head": H, "n_layer": L, "n_inner": None, "activation_function": "gelu_new",
              "layer_norm_epsilon": 1e-05, "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1,
              "scale_attn_weights": True, "tie_word_embeddings": True}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    # The names of a GPT2LMHeadModel's state dict: prefixed "transformer." (the loader also takes them bare).
    write_safetensors(out / "model.safetensors", w, "transformer.")
    expected = {
        "generated_by": "tests/tools/gpt2_reference.py (PyTorch %s, float64 forward)" % torch.__version__,
        "ids": ids.tolist(),
        "targets": targets.tolist(),
        "loss": loss,
        "max_abs_logit": logits.abs().max().item(),
        "logits": [[[float("%.9g" % v) for v in row] for row in seq] for seq in logits.tolist()],
    }
    (out / "expected.json").write_text(json.dumps(expected) + "\n")
    print(f"wrote {out}: logits {tuple(logits.shape)}, max |logit| {expected['max_abs_logit']:.3f}, loss {loss:.6f}")


if __name__ == "__main__":
    main()
