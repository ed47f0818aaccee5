#!/usr/bin/python3
"""Side-by-side training throughput: minnow against PyTorch on Fashion-MNIST.

For each model it alternates one-epoch runs of `minnow train` and bench/torch_train.py (same
architecture, batch, Adam lr 1e-3, seed and thread count; data already in memory on both sides),
repeats them, and prints the median images/s of each and their ratio.

    bench/peer_train.py [--models lenet5 lenet300 mobilenet_v2] [--repeats 5] [--threads 2] [--batch 64]

PyTorch runs with OPENBLAS_NUM_THREADS=1 unless --torch-blas-threads says otherwise: Debian's
torch calls the system BLAS, and OpenBLAS's own thread pool fighting torch's OpenMP threads
makes PyTorch 3-4x slower on this 2-core machine. Single-threaded BLAS is PyTorch's fastest
setting here, so it is the peer we measure against.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_json(cmd, env, report):
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        sys.exit(f"peer_train: command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}")
    with open(report) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["lenet5", "lenet300", "mobilenet_v2"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--minnow", default=os.path.join(ROOT, "build", "minnow"))
    ap.add_argument("--data", default="fashion-mnist",
                    help="minnow --data value; PyTorch reads the Debian dataset directory, or this "
                         "value when it is a directory of IDX files (e.g. a subset for quick runs)")
    ap.add_argument("--torch-blas-threads", default="1")
    ap.add_argument("--report-json", default=None)
    args = ap.parse_args()
    if not os.access(args.minnow, os.X_OK):
        sys.exit(f"peer_train: no minnow binary at {args.minnow} (run scripts/build)")

    base_env = dict(os.environ)
    torch_env = dict(base_env, OPENBLAS_NUM_THREADS=args.torch_blas_threads)
    torch_data = ["--data", args.data] if os.path.isdir(args.data) else []
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        for model in args.models:
            mine, peer, accs = [], [], []
            for r in range(args.repeats):
                m = run_json([args.minnow, "train", "--model", model, "--data", args.data,
                              "--epochs", str(args.epochs), "--batch", str(args.batch),
                              "--threads", str(args.threads), "--seed", "0", "--optimizer",
                              "adam", "--lr", "1e-3", "--no-checkpoint",
                              "--out", os.path.join(tmp, "model.mnw"), "--report-json", report],
                             base_env, report)
                t = run_json(["/usr/bin/python3", os.path.join(ROOT, "bench", "torch_train.py"),
                              "--model", model, "--epochs", str(args.epochs), "--batch",
                              str(args.batch), "--threads", str(args.threads),
                              "--report-json", report] + torch_data, torch_env, report)
                mine.append(m["train_img_per_s"])
                peer.append(t["train_img_per_s"])
                accs.append((m["test_acc"], t["test_acc"]))
                print(f"  {model} run {r + 1}/{args.repeats}: minnow {m['train_img_per_s']:8.0f} "
                      f"img/s  pytorch {t['train_img_per_s']:8.0f} img/s", flush=True)
            med_m, med_t = statistics.median(mine), statistics.median(peer)
            results[model] = {"minnow_img_per_s": med_m, "pytorch_img_per_s": med_t,
                              "ratio": med_m / med_t, "minnow_runs": mine, "pytorch_runs": peer,
                              "minnow_test_acc": accs[-1][0], "pytorch_test_acc": accs[-1][1]}

    print(f"\ntraining throughput, {args.epochs} epoch(s), batch {args.batch}, "
          f"{args.threads} threads, median of {args.repeats} alternating runs")
    print(f"{'model':10} {'minnow img/s':>13} {'pytorch img/s':>14} {'ratio':>7}")
    for model, r in results.items():
        print(f"{model:10} {r['minnow_img_per_s']:13.0f} {r['pytorch_img_per_s']:14.0f} "
              f"{r['ratio']:6.2f}x")
    if args.report_json:
        with open(args.report_json, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
