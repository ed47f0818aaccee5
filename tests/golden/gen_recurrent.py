#!/usr/bin/python3
"""Golden files for minnow's LSTM and GRU ops (tests/ops/test_recurrent_golden.cpp).

Runs PyTorch's nn.LSTM / nn.GRU (batch_first=True, one layer) in float64 on small fixed cases,
through pack_padded_sequence / pad_packed_sequence when lengths are given, and saves inputs,
outputs and the gradients of  L = sum(y * R1) + sum(h_last * R2)  as .npy files under
tests/golden/recurrent/<case>/. Made with PyTorch 1.13 (Debian python3-torch):

    /usr/bin/python3 tests/golden/gen_recurrent.py
"""
import os

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

N, T, F, H = 3, 6, 5, 4
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recurrent")


def stacked(module, name, bidirectional):
    """Direction 0 rows first, then the reverse direction (minnow's layout)."""
    parts = [getattr(module, name + "_l0")]
    if bidirectional:
        parts.append(getattr(module, name + "_l0_reverse"))
    return torch.cat(parts, dim=0)


def run_case(kind, bidirectional, lengths, seed):
    torch.manual_seed(seed)
    cls = nn.LSTM if kind == "lstm" else nn.GRU
    module = cls(F, H, num_layers=1, batch_first=True, bidirectional=bidirectional).double()
    dirs = 2 if bidirectional else 1
    x = torch.randn(N, T, F, dtype=torch.float64, requires_grad=True)
    r1 = torch.randn(N, T, dirs * H, dtype=torch.float64)
    r2 = torch.randn(N, dirs * H, dtype=torch.float64)
    if lengths is None:
        y, state = module(x)
    else:
        packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True,
                                      enforce_sorted=False)
        out, state = module(packed)
        y, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
    h_n = state[0] if kind == "lstm" else state  # [dirs, N, H]
    h_last = h_n.permute(1, 0, 2).reshape(N, dirs * H)
    loss = (y * r1).sum() + (h_last * r2).sum()
    loss.backward()

    names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    tensors = {
        "x": x.detach(),
        "r1": r1,
        "r2": r2,
        "y": y.detach(),
        "h_last": h_last.detach(),
        "dx": x.grad,
    }
    for name, key in zip(names, ["w_ih", "w_hh", "b_ih", "b_hh"]):
        tensors[key] = stacked(module, name, bidirectional).detach()
        grads = [getattr(module, name + "_l0").grad]
        if bidirectional:
            grads.append(getattr(module, name + "_l0_reverse").grad)
        tensors["d" + key] = torch.cat(grads, dim=0)
    if lengths is not None:
        tensors["lengths"] = torch.tensor(lengths, dtype=torch.int64)

    case = "%s_%s_%s" % (kind, "bi" if bidirectional else "uni",
                         "len" if lengths is not None else "full")
    folder = os.path.join(OUT, case)
    os.makedirs(folder, exist_ok=True)
    for key, value in tensors.items():
        np.save(os.path.join(folder, key + ".npy"), np.ascontiguousarray(value.numpy()))
    print(case, "y[0,0,:2] =", y[0, 0, :2].tolist())


def main():
    seed = 20261123
    for kind in ("lstm", "gru"):
        run_case(kind, False, [6, 4, 1], seed)
        run_case(kind, True, [6, 4, 1], seed + 1)
        run_case(kind, True, None, seed + 2)


if __name__ == "__main__":
    main()
