#!/usr/bin/python3
"""Writes the MultiHeadAttention golden files read by tests/ops/test_attention.cpp.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tests/golden/gen_attention.py

Case: nn.MultiheadAttention(embed_dim=8, num_heads=2, batch_first=True) in float64, called as
mha(x, x, x, key_padding_mask=mask) for x [2, 5, 8], sample 1 padded to length 3 (keys 3, 4
masked). Loss = sum(out * r) for a fixed random r. Parameters are random (biases too, which
PyTorch initializes to zero) so that every gradient is exercised. Inputs are rounded to float32
values before use, so the C++ side can run the same case in f32 and f64.
"""
import os

import numpy as np
import torch

N, T, D, H = 2, 5, 8, 2
LENGTHS = [5, 3]

out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "attention")
os.makedirs(out_dir, exist_ok=True)

rng = np.random.default_rng(20261123)


def f32_values(shape, scale=1.0):
    return (rng.uniform(-1, 1, size=shape) * scale).astype(np.float32).astype(np.float64)


x = f32_values((N, T, D))
in_w = f32_values((3 * D, D), 0.6)
in_b = f32_values((3 * D,), 0.2)
out_w = f32_values((D, D), 0.6)
out_b = f32_values((D,), 0.2)
r = f32_values((N, T, D))
lengths = np.array(LENGTHS, dtype=np.int64)

mha = torch.nn.MultiheadAttention(D, H, batch_first=True).double()
with torch.no_grad():
    mha.in_proj_weight.copy_(torch.from_numpy(in_w))
    mha.in_proj_bias.copy_(torch.from_numpy(in_b))
    mha.out_proj.weight.copy_(torch.from_numpy(out_w))
    mha.out_proj.bias.copy_(torch.from_numpy(out_b))
xt = torch.from_numpy(x).requires_grad_(True)
mask = torch.arange(T)[None, :] >= torch.from_numpy(lengths)[:, None]  # True = masked key
out, _ = mha(xt, xt, xt, key_padding_mask=mask)
(out * torch.from_numpy(r)).sum().backward()

files = {
    "x": x, "in_proj_weight": in_w, "in_proj_bias": in_b, "out_proj_weight": out_w,
    "out_proj_bias": out_b, "r": r, "lengths": lengths,
    "out": out.detach().numpy(),
    "grad_x": xt.grad.numpy(),
    "grad_in_proj_weight": mha.in_proj_weight.grad.numpy(),
    "grad_in_proj_bias": mha.in_proj_bias.grad.numpy(),
    "grad_out_proj_weight": mha.out_proj.weight.grad.numpy(),
    "grad_out_proj_bias": mha.out_proj.bias.grad.numpy(),
}
for name, value in files.items():
    np.save(os.path.join(out_dir, name + ".npy"), np.ascontiguousarray(value))
print("wrote", len(files), "files to", out_dir, "with torch", torch.__version__)
