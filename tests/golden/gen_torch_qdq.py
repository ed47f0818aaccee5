#!/usr/bin/python3
"""A PyTorch-quantized LeNet-5 as a QDQ ONNX file, for tests/onnx/test_qdq_golden.cpp.

    /usr/bin/python3 tests/golden/gen_torch_qdq.py [OUT_DIR]      (default: tests/golden)

Writes (all committed, ~90 KB together; the .onnx is mostly the 61,706 int8 weights):
  OUT_DIR/torch_qdq_lenet5.onnx      the quantized model, QuantizeLinear/DequantizeLinear around
                                     Conv/Gemm (torch.onnx.export, opset 13), batch axis "N"
  OUT_DIR/torch_qdq_lenet5.pred.npy  PyTorch's quantized predictions (argmax, u8 [10000]) on the
                                     Fashion-MNIST test images, in file order
  OUT_DIR/torch_qdq_lenet5.json      the input normalization, accuracies and how it was made

The network is minnow's lenet5 (src/zoo/lenet.cpp) layer for layer: conv 6@5x5 pad 2, ReLU,
max-pool 2, conv 16@5x5, ReLU, max-pool 2, flatten, Linear 120, ReLU, Linear 84, ReLU, Linear 10.
It is trained for EPOCHS epochs (Adam) on the Fashion-MNIST training set from the Debian
package dataset-fashion-mnist, then quantized post-training in eager mode with the qnnpack
engine (QuantStub/DeQuantStub, conv+relu fused, the default qnnpack qconfig:
u8 activations from a histogram observer, i8 symmetric per-tensor weights; calibration on
CALIB_SAMPLES training images).

Inputs are normalized as minnow's loader does it (src/data/normalize.h): pixel / 255, then
(v - mean) / std with the mean and population standard deviation of all training pixels,
computed here in float64 and stored in the .json. The test normalizes with exactly those two
numbers.

Deterministic on one thread (torch.manual_seed, torch.set_num_threads(1)); about 20 s of CPU.
"""
import gzip
import json
import os
import sys
import time
import warnings

import numpy as np
import torch
from torch import nn
import torch.ao.quantization as tq

DATA_DIR = "/usr/share/datasets/fashion-mnist"
OPSET = 13
SEED = 0
EPOCHS = 2
BATCH = 64
LR = 1e-3
CALIB_SAMPLES = 2000
NAME = "torch_qdq_lenet5"


def read_idx(path):
    """An IDX file (gzip) as a numpy array: u8 images [N, H, W] or labels [N]."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {arr.size} bytes for shape {dims}")
    return arr.reshape(dims)


def load_split(prefix):
    images = read_idx(os.path.join(DATA_DIR, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(DATA_DIR, f"{prefix}-labels-idx1-ubyte.gz"))
    return images, labels


class LeNet5(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten(1)
        self.fc1 = nn.Linear(400, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.logits = nn.Linear(84, classes)
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.flatten(x)
        x = self.relu3(self.fc1(x))
        x = self.relu4(self.fc2(x))
        return self.dequant(self.logits(x))


def predict(model, x, batch=1000):
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(model(x[i:i + batch]).argmax(1))
    return torch.cat(out).numpy()


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.backends.quantized.engine = "qnnpack"
    t0 = time.time()

    train_images, train_labels = load_split("train")
    test_images, test_labels = load_split("t10k")
    train_f = train_images.astype(np.float32) / 255.0
    mean = float(train_f.astype(np.float64).mean())
    std = float(train_f.astype(np.float64).std())  # population std, as minnow's loader

    def normalize(images):
        x = (images.astype(np.float32) / np.float32(255.0) - np.float32(mean)) / np.float32(std)
        return torch.from_numpy(x[:, None, :, :].astype(np.float32))

    x_train, y_train = normalize(train_images), torch.from_numpy(train_labels.astype(np.int64))
    x_test, y_test = normalize(test_images), torch.from_numpy(test_labels.astype(np.int64))

    model = LeNet5()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(x_train))
        for i in range(0, len(perm), BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            loss_fn(model(x_train[idx]), y_train[idx]).backward()
            opt.step()
        model.eval()
        acc = float((torch.from_numpy(predict(model, x_test)) == y_test).float().mean())
        print(f"epoch {epoch + 1}: float test accuracy {acc:.4f}", flush=True)
    float_acc = acc

    model.eval()
    # torch 1.13's ONNX export has no quantized::linear_relu, so only conv+relu are fused; the
    # Linear layers' ReLUs stay quantized ReLU modules (DequantizeLinear -> Relu ->
    # QuantizeLinear with the Linear output's own parameters in the file).
    tq.fuse_modules(model, [["conv1", "relu1"], ["conv2", "relu2"]], inplace=True)
    model.qconfig = tq.get_default_qconfig("qnnpack")
    tq.prepare(model, inplace=True)
    calib = torch.randperm(len(x_train))[:CALIB_SAMPLES]
    with torch.no_grad():
        for i in range(0, CALIB_SAMPLES, 500):
            model(x_train[calib[i:i + 500]])
    tq.convert(model, inplace=True)

    pred = predict(model, x_test)
    int8_acc = float((torch.from_numpy(pred) == y_test).float().mean())
    print(f"quantized (qnnpack) test accuracy {int8_acc:.4f}", flush=True)

    onnx_path = os.path.join(out_dir, NAME + ".onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, x_test[:2], onnx_path, opset_version=OPSET,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                          do_constant_folding=True)
    np.save(os.path.join(out_dir, NAME + ".pred.npy"), pred.astype(np.uint8))
    meta = {
        "onnx": NAME + ".onnx",
        "predictions": NAME + ".pred.npy",
        "opset": OPSET,
        "engine": "qnnpack",
        "normalization": {"mean": mean, "std": std,
                          "formula": "(pixel / 255 - mean) / std, float32"},
        "epochs": EPOCHS,
        "calibration_samples": CALIB_SAMPLES,
        "float_test_accuracy": float_acc,
        "quantized_test_accuracy": int8_acc,
        "torch": torch.__version__,
    }
    with open(os.path.join(out_dir, NAME + ".json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"wrote {onnx_path} ({os.path.getsize(onnx_path)} bytes) in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
