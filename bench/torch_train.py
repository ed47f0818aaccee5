#!/usr/bin/python3
"""PyTorch peer of minnow's training benchmark (Fashion-MNIST, LeNet-5 / LeNet-300-100 / MobileNetV2).

Run with Debian's interpreter (python3-torch, no pip):
    /usr/bin/python3 bench/torch_train.py --model lenet5 --epochs 1 --threads 2

Only the training loop is timed; data loading, normalisation, warm-up and
evaluation are outside the clock so the number is comparable to minnow's.
"""
import argparse, copy, gzip, json, os, sys, time

import numpy as np
import torch
import torch.nn as nn

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
EXPECTED_PARAMS = {"lenet5": 61_706, "lenet300": 266_610, "mobilenet_v2": 70_250}


# minnow's zoo "mobilenet_v2": the PyTorch twin shared with the golden-file generator.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests", "golden"))
from mobilenet_v2_torch import MobileNetV2Small  # noqa: E402


def load_idx(path, magic, ndim):
    """Read a gzip IDX file; the magic number guards against swapped/corrupt files."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    got = int.from_bytes(raw[0:4], "big")
    if got != magic:
        raise ValueError(f"{path}: magic {got:#x}, expected {magic:#x}")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data, header says {dims}")
    return data.reshape(dims)


def load_split(data_dir, prefix):
    x = load_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"), 0x00000803, 3)
    y = load_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"), 0x00000801, 1)
    if len(x) != len(y):
        raise ValueError(f"{prefix}: {len(x)} images but {len(y)} labels")
    # NCHW float32 in [0,1]; labels int64 as CrossEntropyLoss wants.
    x = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(y.astype(np.int64))


def build_model(name):
    if name == "lenet5":
        # padding=2 on conv1 makes 28x28 behave like the classic 32x32 input -> 16*5*5 = 400.
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10))
    if name == "lenet300":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 300), nn.ReLU(),
            nn.Linear(300, 100), nn.ReLU(),
            nn.Linear(100, 10))
    if name == "mobilenet_v2":
        return MobileNetV2Small()
    raise ValueError(name)


def train_step(model, opt, loss_fn, xb, yb):
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(xb), yb)
    loss.backward()
    opt.step()
    return loss


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=sorted(EXPECTED_PARAMS), default="lenet5")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--warmup-steps", type=int, default=20)
    ap.add_argument("--max-steps", type=int, default=0,
                    help="stop each epoch after this many steps (0: whole epoch)")
    ap.add_argument("--report-json", default=None)
    args = ap.parse_args()

    # Interop threads must be set before any parallel work starts; one interop
    # thread keeps the comparison to "T intra-op threads" and nothing else.
    torch.set_num_interop_threads(1)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # deterministic default init

    x_train, y_train = load_split(args.data, "train")
    x_test, y_test = load_split(args.data, "t10k")
    # Normalise with statistics of the training set (Fashion-MNIST: ~0.2860 / ~0.3530),
    # applied to both splits, so no test information leaks in.
    mean, std = x_train.mean().item(), x_train.std().item()
    print(f"train set mean={mean:.4f} std={std:.4f}")
    x_train = ((x_train - mean) / std).contiguous()
    x_test = ((x_test - mean) / std).contiguous()

    model = build_model(args.model)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == EXPECTED_PARAMS[args.model], (args.model, n_params)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    n, B = len(x_train), args.batch

    # Warm-up (untimed): lets oneDNN/allocator caches settle. It runs on a deep
    # copy of model and optimizer that is then discarded, so the measured run
    # starts from exactly the same weights as a run without warm-up and the
    # accuracy stays comparable with minnow's.
    if args.warmup_steps > 0:
        wm = copy.deepcopy(model)
        wo = torch.optim.Adam(wm.parameters(), lr=args.lr)
        wm.train()
        for s in range(args.warmup_steps):
            lo = (s * B) % n
            train_step(wm, wo, loss_fn, x_train[lo:lo + B], y_train[lo:lo + B])
        del wm, wo

    # Separate generator: shuffling order depends only on --seed, not on how
    # many random numbers init or warm-up consumed.
    gen = torch.Generator().manual_seed(args.seed)
    steps, images, train_seconds, final_train_loss = 0, 0, 0.0, float("nan")
    model.train()
    for epoch in range(args.epochs):
        perm = torch.randperm(n, generator=gen)  # shuffling is outside the clock
        losses = []
        t0 = time.perf_counter()
        for lo in range(0, n, B):  # last partial batch included
            if args.max_steps and lo // B >= args.max_steps:
                break
            idx = perm[lo:lo + B]
            xb, yb = x_train[idx], y_train[idx]  # gather counts as data slicing: timed
            losses.append(train_step(model, opt, loss_fn, xb, yb).detach())
            steps += 1
            images += len(idx)
        train_seconds += time.perf_counter() - t0
        # Summing the loss tensors after the clock avoids a per-step .item() sync.
        final_train_loss = torch.stack(losses).mean().item()
        print(f"epoch {epoch + 1}/{args.epochs}: mean train loss {final_train_loss:.4f}")

    model.eval()
    tot_loss, correct = 0.0, 0
    with torch.no_grad():
        for lo in range(0, len(x_test), 1000):
            out = model(x_test[lo:lo + 1000])
            yb = y_test[lo:lo + 1000]
            tot_loss += loss_fn(out, yb).item() * len(yb)  # weight by batch size
            correct += (out.argmax(1) == yb).sum().item()
    test_loss, test_acc = tot_loss / len(x_test), correct / len(x_test)

    report = {
        "model": args.model, "params": n_params, "epochs": args.epochs,
        "steps": steps, "batch": B, "threads": args.threads,
        "train_seconds": train_seconds, "train_img_per_s": images / train_seconds,
        "final_train_loss": final_train_loss, "test_loss": test_loss,
        "test_acc": test_acc, "framework": "pytorch", "torch_version": torch.__version__,
    }
    print(f"pytorch {torch.__version__} {args.model} ({n_params} params) "
          f"epochs={args.epochs} batch={B} threads={args.threads}: "
          f"{report['train_img_per_s']:.0f} img/s ({train_seconds:.2f}s, {steps} steps), "
          f"train loss {final_train_loss:.4f}, test loss {test_loss:.4f}, "
          f"test acc {100 * test_acc:.2f}%")
    if args.report_json:
        with open(args.report_json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
