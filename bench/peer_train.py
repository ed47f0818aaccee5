#!/usr/bin/python3
"""Side-by-side training throughput: minnow against PyTorch (image and text models).

For each model it alternates one-epoch runs of `minnow train` and its PyTorch twin (same
architecture and parameter count, batch, Adam lr 1e-3, seed and thread count; data already in
memory on both sides), repeats them, and prints the median samples/s of each, their ratio and
the test accuracies of the last run.

    bench/peer_train.py [--models lenet5 lenet300 mobilenet_v2] [--repeats 5] [--threads 2] [--batch 64]
    bench/peer_train.py --models lstm_classifier gru_classifier transformer_classifier --repeats 1

Image models (lenet5, lenet300, mobilenet_v2) train on Fashion-MNIST (--data); the twin is
bench/torch_train.py. Text models (lstm_classifier, gru_classifier, transformer_classifier) train
on the SpamAssassin corpus: minnow runs `minnow train --data spam --max-len L --vocab-size V`, the
twin is bench/torch_text.py, which reproduces minnow's split, tokenizer, vocabulary and batch
order exactly. Its LSTM/GRU honour the lengths with --rnn-lengths masked (default; the same
function as pack_padded_sequence, checked on every run) because torch 1.13's packed CPU backward
is quadratic in the sequence length; --rnn-lengths packed measures the textbook version.

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
TEXT_MODELS = ("lstm_classifier", "gru_classifier", "transformer_classifier")


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
    ap.add_argument("--max-len", type=int, default=256, help="text models: tokens per sample")
    ap.add_argument("--vocab-size", type=int, default=20000, help="text models: vocabulary")
    ap.add_argument("--rnn-lengths", choices=("masked", "packed"), default="masked",
                    help="text models: how the PyTorch LSTM/GRU honour lengths")
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
                common = ["--epochs", str(args.epochs), "--batch", str(args.batch), "--threads",
                          str(args.threads)]
                text = ["--max-len", str(args.max_len), "--vocab-size", str(args.vocab_size)]
                if model in TEXT_MODELS:
                    mine_data, peer_cmd = ["--data", "spam"] + text, [
                        "torch_text.py", "--rnn-lengths", args.rnn_lengths] + text
                else:
                    mine_data, peer_cmd = ["--data", args.data], ["torch_train.py"] + torch_data
                m = run_json([args.minnow, "train", "--model", model] + mine_data + common +
                             ["--seed", "0", "--optimizer", "adam", "--lr", "1e-3",
                              "--no-checkpoint", "--out", os.path.join(tmp, "model.mnw"),
                              "--report-json", report], base_env, report)
                t = run_json(["/usr/bin/python3", os.path.join(ROOT, "bench", peer_cmd[0]),
                              "--model", model, "--report-json", report] + common + peer_cmd[1:],
                             torch_env, report)
                if m["params"] != t["params"]:
                    sys.exit(f"peer_train: {model} has {m['params']} parameters in minnow but "
                             f"{t['params']} in the PyTorch twin; the twins must match")
                mine.append(m["train_img_per_s"])
                peer.append(t["train_img_per_s"])
                accs.append((m["test_acc"], t["test_acc"]))
                print(f"  {model} run {r + 1}/{args.repeats}: minnow {m['train_img_per_s']:8.0f} "
                      f"samples/s  pytorch {t['train_img_per_s']:8.0f} samples/s", flush=True)
            med_m, med_t = statistics.median(mine), statistics.median(peer)
            results[model] = {"minnow_img_per_s": med_m, "pytorch_img_per_s": med_t,
                              "ratio": med_m / med_t, "minnow_runs": mine, "pytorch_runs": peer,
                              "minnow_test_acc": accs[-1][0], "pytorch_test_acc": accs[-1][1]}

    print(f"\ntraining throughput, {args.epochs} epoch(s), batch {args.batch}, "
          f"{args.threads} threads, median of {args.repeats} alternating runs")
    w = max([10] + [len(m) for m in results])
    print(f"{'model':{w}} {'minnow /s':>10} {'pytorch /s':>11} {'ratio':>7} "
          f"{'acc minnow':>11} {'acc pytorch':>12}")
    for model, r in results.items():
        print(f"{model:{w}} {r['minnow_img_per_s']:10.0f} {r['pytorch_img_per_s']:11.0f} "
              f"{r['ratio']:6.2f}x {100 * r['minnow_test_acc']:10.2f}% "
              f"{100 * r['pytorch_test_acc']:11.2f}%")
    if args.report_json:
        with open(args.report_json, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
