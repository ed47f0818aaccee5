#!/usr/bin/python3
"""Writes the MobileNetV2 golden files read by tests/zoo/test_mobilenet_v2_golden.cpp.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tests/golden/gen_mobilenet_v2.py

The model is minnow's zoo "mobilenet_v2" for a 1x28x28 input and 10 classes (src/zoo/mobilenet.cpp):
stem 3x3 conv 16 stride 1 + BN + ReLU6; inverted residuals (t, c, s) = (1,16,1) (6,24,2) (6,24,1)
(6,32,2) (6,32,1) (6,64,1); head 1x1 conv 128 + BN + ReLU6; global average pool; fc 10. Module
attribute names are chosen so that state_dict keys ARE minnow's initializer names
("block2.expand.conv.weight", "head.bn.running_var", "logits.bias", ...).

Weights come from a fixed seed; BN scales, shifts and running statistics are randomized too so
that no parameter sits at a trivial value. All values are rounded to float32, then the model runs
in float64, so the files hold the exact answer for the float32 weights (up to the final rounding).

Files (all float32 .npy, plus a text manifest):
  manifest.txt   one line per initializer: name, trainable (0/1), shape dims ("x"-separated)
  weights.npy    all initializers in manifest order, flattened and concatenated
  input.npy      x [2, 1, 28, 28]
  r.npy          R [2, 10]
  out_eval.npy   model(x) in eval mode (BN uses the running statistics)
  out_train.npy  model(x) in train mode (BN uses the batch statistics, biased variance)
  grads.npy      d sum(out_train * R) / d w for every trainable initializer, manifest order
"""
import os

import numpy as np
import torch
from torch import nn

out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mobilenet_v2")
os.makedirs(out_dir, exist_ok=True)
torch.manual_seed(20261123)


from mobilenet_v2_torch import MobileNetV2Small  # noqa: E402 (after the seed is set)


def f32(t):
    return t.float().double()


model = MobileNetV2Small()
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith("bn.weight"):
            p.uniform_(0.5, 1.5)
        elif name.endswith("bn.bias"):
            p.uniform_(-0.3, 0.3)
    for name, b in model.named_buffers():
        if name.endswith("running_mean"):
            b.uniform_(-0.3, 0.3)
        elif name.endswith("running_var"):
            b.uniform_(0.5, 2.0)
model = model.double()
with torch.no_grad():
    for v in list(model.parameters()) + list(model.buffers()):
        if v.dtype == torch.float64:
            v.copy_(f32(v))

state = {k: v.clone() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
trainable = {name for name, _ in model.named_parameters()}
names = sorted(state)

x = f32(torch.randn(2, 1, 28, 28, dtype=torch.float64))
r = f32(torch.randn(2, 10, dtype=torch.float64))

model.eval()
with torch.no_grad():
    out_eval = model(x)
model.train()  # updates the running statistics, which were saved above
out_train = model(x)
(out_train * r).sum().backward()
params = dict(model.named_parameters())


def save(name, t):
    np.save(os.path.join(out_dir, name), t.detach().numpy().astype(np.float32))


with open(os.path.join(out_dir, "manifest.txt"), "w") as f:
    for n in names:
        f.write("%s %d %s\n" % (n, n in trainable, "x".join(str(d) for d in state[n].shape)))
save("weights.npy", torch.cat([state[n].reshape(-1) for n in names]))
save("grads.npy", torch.cat([params[n].grad.reshape(-1) for n in names if n in trainable]))
save("input.npy", x)
save("r.npy", r)
save("out_eval.npy", out_eval)
save("out_train.npy", out_train)
print("trainable parameters:", sum(params[n].numel() for n in trainable))
print("wrote", out_dir)
