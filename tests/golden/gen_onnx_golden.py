#!/usr/bin/python3
"""ONNX golden models for minnow's ONNX importer (tests/onnx/test_onnx_golden.cpp).

    /usr/bin/python3 tests/golden/gen_onnx_golden.py OUT_DIR [--only NAME,NAME]

Exports networks as PyTorch builds them to OUT_DIR/<name>.onnx (torch.onnx.export, opset 13,
dynamic batch axis "N", constant folding on) and saves a float32 input (batch 2, standard
normal) as OUT_DIR/<name>.input.npy and PyTorch's eval-mode output for it as
OUT_DIR/<name>.output.npy. OUT_DIR/manifest.json lists every model with its files and shapes.

Models:
  - torchvision 0.14 classifiers with their own random initialization (weights=None), 1000
    classes, input 3x96x96 (all of them pool adaptively or by mean, so 96x96 is accepted):
    mobilenet_v2, mobilenet_v3_small, squeezenet1_1, shufflenet_v2_x0_5, resnet18.
  - small recurrent classifiers, batch_first, input [N, 7, 8], a Linear head on the last time
    step: lstm (hidden 16), gru (hidden 16), lstm_bidirectional, lstm_2layer. Their ONNX form
    carries the Transpose/Squeeze/Slice/Gather patterns PyTorch emits around LSTM/GRU nodes.

BatchNorm must not be an identity in eval mode, or folding it would go untested: torchvision
starts every BN at scale 1, shift 0, mean 0, var 1. So the BN scales and shifts are drawn at
random, and the running statistics come from a few training-mode forward passes on random data
(with torch.no_grad; the default momentum 0.1, so 10 passes move them well away from 0/1).
The exporter (TrainingMode.EVAL) folds each BN into the Conv before it, so the files carry no
BatchNormalization node; mobilenet_v2_bn is the same network exported with
TrainingMode.PRESERVE (the model is in eval mode), which keeps the BatchNormalization nodes
(inference form) for minnow's own BN folding to handle.

Outputs of std below 0.1 have their last Linear layer scaled by a power of two (see
amplify_small_outputs) so the absolute part of the tolerance does not hide errors.

The .onnx files are not committed (resnet18 alone is 45 MB): the test writes them into the build
tree. Runs in about 20 s on one thread with Debian's python3-torch 1.13 / python3-torchvision.
"""
import argparse
import json
import math
import os
import sys
import time
import warnings

import numpy as np
import torch
import torchvision
from torch import nn

OPSET = 13
SEED = 0
BATCH = 2
IMAGE_SHAPE = (3, 96, 96)
SEQ_SHAPE = (7, 8)  # time steps, features
BN_WARMUP_PASSES = 10


class RecurrentHead(nn.Module):
    """An LSTM or GRU over [N, T, F] followed by a Linear classifier on the last time step."""

    def __init__(self, kind, hidden, num_layers=1, bidirectional=False, classes=4):
        super().__init__()
        cls = nn.LSTM if kind == "lstm" else nn.GRU
        self.rnn = cls(SEQ_SHAPE[1], hidden, num_layers=num_layers, batch_first=True,
                       bidirectional=bidirectional)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), classes)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y[:, -1])


def torchvision_model(name, keep_batchnorm=False):
    def build():
        return getattr(torchvision.models, name)(weights=None)

    return build, IMAGE_SHAPE, keep_batchnorm


MODELS = {
    "mobilenet_v2": torchvision_model("mobilenet_v2"),
    "mobilenet_v2_bn": torchvision_model("mobilenet_v2", keep_batchnorm=True),
    "mobilenet_v3_small": torchvision_model("mobilenet_v3_small"),
    "squeezenet1_1": torchvision_model("squeezenet1_1"),
    "shufflenet_v2_x0_5": torchvision_model("shufflenet_v2_x0_5"),
    "resnet18": torchvision_model("resnet18"),
    "lstm": (lambda: RecurrentHead("lstm", 16), SEQ_SHAPE, False),
    "gru": (lambda: RecurrentHead("gru", 16), SEQ_SHAPE, False),
    "lstm_bidirectional": (lambda: RecurrentHead("lstm", 16, bidirectional=True), SEQ_SHAPE,
                           False),
    "lstm_2layer": (lambda: RecurrentHead("lstm", 16, num_layers=2), SEQ_SHAPE, False),
}


def give_batchnorm_statistics(model, sample_shape):
    """Random BN scale/shift, then running statistics from training-mode passes."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    with torch.no_grad():
        for bn in bns:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.3, 0.3)
        model.train()
        for _ in range(BN_WARMUP_PASSES):
            # Mean and scale away from 0 and 1 so the running statistics are not trivial either.
            model(torch.randn(4, *sample_shape) * 1.5 + 0.2)
    return len(bns)


def amplify_small_outputs(model, x):
    """Scales the last Linear layer by a power of two when the outputs are tiny.

    The check is |minnow - torch| <= 1e-4 (1 + |torch|): on outputs of size ~0.01 (torchvision
    initializes mobilenet_v3_small's classifier with std 0.01) an error of 1e-4 would be a 1%
    error. Scaling the head scales every upstream error with the output, so the tolerance bites
    at the same relative level for every model. Returns the factor used.
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        std = float(model(x).std())
        if not linears or std >= 0.1:
            return 1.0
        factor = 2.0**round(math.log2(0.3 / std))
        linears[-1].weight.mul_(factor)
        linears[-1].bias.mul_(factor)
    return factor


def export_one(name, out_dir):
    build, sample_shape, keep_batchnorm = MODELS[name]
    torch.manual_seed(SEED)
    model = build()
    bn_count = give_batchnorm_statistics(model, sample_shape)
    model.eval()

    x = torch.randn(BATCH, *sample_shape, dtype=torch.float32)
    head_scale = amplify_small_outputs(model, x)
    with torch.no_grad():
        y = model(x)

    onnx_path = os.path.join(out_dir, name + ".onnx")
    with warnings.catch_warnings():
        # PyTorch warns that a batch_first RNN exported with a batch size other than 1 may not
        # generalize; the batch axis is declared dynamic, which is what the importer must handle.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, x, onnx_path, opset_version=OPSET, do_constant_folding=True,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "N"}, "output": {0: "N"}},
                          training=(torch.onnx.TrainingMode.PRESERVE
                                    if keep_batchnorm else torch.onnx.TrainingMode.EVAL))
    np.save(os.path.join(out_dir, name + ".input.npy"), x.numpy())
    np.save(os.path.join(out_dir, name + ".output.npy"), y.numpy())
    return {
        "name": name,
        "onnx": name + ".onnx",
        "input": name + ".input.npy",
        "output": name + ".output.npy",
        "input_name": "input",
        "output_name": "output",
        "input_shape": list(x.shape),
        "output_shape": list(y.shape),
        "batchnorm_layers": bn_count,
        "batchnorm_in_onnx": keep_batchnorm and bn_count > 0,
        "head_scale": head_scale,
        "onnx_bytes": os.path.getsize(onnx_path),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--only", help="comma-separated model names (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    names = list(MODELS)
    if args.only:
        names = args.only.split(",")
        unknown = [n for n in names if n not in MODELS]
        if unknown:
            sys.exit("gen_onnx_golden.py: unknown model(s) %s; known: %s" %
                     (", ".join(unknown), ", ".join(MODELS)))
    os.makedirs(args.out_dir, exist_ok=True)

    entries = []
    for name in names:
        start = time.time()
        entry = export_one(name, args.out_dir)
        entries.append(entry)
        print("%-20s input %-16s output %-10s %6.1f MB  %.1f s" %
              (name, "x".join(map(str, entry["input_shape"])),
               "x".join(map(str, entry["output_shape"])), entry["onnx_bytes"] / 1e6,
               time.time() - start), flush=True)

    manifest = {
        "generator": "tests/golden/gen_onnx_golden.py",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "opset": OPSET,
        "seed": SEED,
        "tolerance": {"abs": 1e-4, "rel": 1e-4},
        "models": entries,
    }
    # Written last and atomically: a manifest means every file it lists is complete.
    tmp = os.path.join(args.out_dir, "manifest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, os.path.join(args.out_dir, "manifest.json"))


if __name__ == "__main__":
    main()
