#!/usr/bin/python3
"""Issue 6 acceptance figures for int8 ONNX interchange, on the full Fashion-MNIST test set.

1. Round trip: for each model, `minnow train` (float) -> `minnow quantize` (QDQ .mnw, integer
   kernels) -> `minnow export` (QDQ ONNX) -> ONNX Runtime (tests/onnx/ort_run.js, one thread).
   Prints how many of the 10,000 top-1 predictions minnow's int8 model and ONNX Runtime's run
   of the exported file share (target >= 99.5%), and each one's test accuracy. The same for
   `minnow export --qoperator` (QLinearConv / QLinearMatMul), run by ONNX Runtime and imported
   back by minnow, with the number of samples whose 10 logits are identical to minnow's.
2. PyTorch: tests/golden/torch_qdq_lenet5.onnx (a LeNet-5 quantized by PyTorch with qnnpack,
   tests/golden/gen_torch_qdq.py) run by `minnow run` against PyTorch's saved predictions.

    bench/qdq_roundtrip.py [--minnow build/minnow] [--models lenet5 resnet8] [--epochs 2]
                           [--threads 1] [--work DIR] [--report-json FILE]

Both runtimes get the same normalized input file: (pixel / 255 - mean) / std with the mean
and population standard deviation of the training pixels (what `minnow train` stores), so
`minnow run` is called with --raw. Training dominates the run time (lenet5: ~1 minute per
epoch on one thread).
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def run(cmd):
    t0 = time.time()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise RuntimeError("failed (exit %d): %s\n%s" % (proc.returncode, " ".join(cmd),
                                                         proc.stdout.strip()))
    return time.time() - t0


def minnow_logits(minnow, model, x_npy, out_npy, threads):
    run([minnow, "run", model, "--raw", "--input", x_npy, "--output", out_npy,
         "--threads", str(threads)])
    return np.load(out_npy)


def ort_logits(model, x_npy, out_dir):
    run(["node", os.path.join(ROOT, "tests/onnx/ort_run.js"), model, out_dir, x_npy])
    files = [f for f in os.listdir(out_dir) if f.endswith(".npy")]
    if len(files) != 1:
        raise RuntimeError("%s: expected one output, ONNX Runtime wrote %s" % (model, files))
    return np.load(os.path.join(out_dir, files[0]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minnow", default=os.path.join(ROOT, "build", "minnow"))
    ap.add_argument("--models", nargs="+", default=["lenet5"])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", help="Directory for the models (default: a temporary one)")
    ap.add_argument("--report-json")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="minnow_qdq_roundtrip_")
    os.makedirs(work, exist_ok=True)

    train = read_idx(os.path.join(DATA_DIR, "train-images-idx3-ubyte.gz"))
    test = read_idx(os.path.join(DATA_DIR, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(DATA_DIR, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    pixels = train.astype(np.float32) / np.float32(255)
    mean, std = float(pixels.astype(np.float64).mean()), float(pixels.astype(np.float64).std())
    x = ((test.astype(np.float32) / np.float32(255) - np.float32(mean)) / np.float32(std))
    x_npy = os.path.join(work, "test_x.npy")
    np.save(x_npy, x[:, None].astype(np.float32))
    report = {"test_samples": int(len(labels)), "round_trip": {}}

    for name in args.models:
        f32, int8 = os.path.join(work, name + ".mnw"), os.path.join(work, name + "_int8.mnw")
        onnx_file = os.path.join(work, name + "_int8.onnx")
        t_train = run([args.minnow, "train", "--model", name, "--data", "fashion-mnist",
                       "--epochs", str(args.epochs), "--threads", str(args.threads),
                       "--no-checkpoint", "--out", f32])
        t_quant = run([args.minnow, "quantize", f32, "--data", "fashion-mnist", "--threads",
                       str(args.threads), "--no-speed-check", "--out", int8])
        run([args.minnow, "export", int8, onnx_file])
        ours = minnow_logits(args.minnow, int8, x_npy, os.path.join(work, name + "_y.npy"),
                             args.threads).argmax(1)
        theirs = ort_logits(onnx_file, x_npy, os.path.join(work, name + "_ort")).argmax(1)
        floats = minnow_logits(args.minnow, f32, x_npy, os.path.join(work, name + "_f.npy"),
                               args.threads).argmax(1)
        agree = int((ours == theirs).sum())
        # The QOperator form of the same model: ONNX Runtime, and minnow importing it back.
        qop_file = os.path.join(work, name + "_int8_qop.onnx")
        run([args.minnow, "export", int8, qop_file, "--qoperator"])
        ours_logits = np.load(os.path.join(work, name + "_y.npy"))
        qop = {}
        for who, logits in (
                ("ort", ort_logits(qop_file, x_npy, os.path.join(work, name + "_ort_qop"))),
                ("minnow_import", minnow_logits(args.minnow, qop_file, x_npy,
                                                os.path.join(work, name + "_qop_y.npy"),
                                                args.threads))):
            qop[who + "_agree"] = int((logits.argmax(1) == ours).sum())
            qop[who + "_identical_logits"] = int((logits == ours_logits).all(1).sum())
        r = {"agree": agree, "agreement": agree / len(labels), "qoperator": qop,
             "minnow_int8_accuracy": float((ours == labels).mean()),
             "ort_accuracy": float((theirs == labels).mean()),
             "minnow_f32_accuracy": float((floats == labels).mean()),
             "onnx_bytes": os.path.getsize(onnx_file), "train_s": t_train, "quantize_s": t_quant}
        report["round_trip"][name] = r
        print("%-10s minnow int8 vs ONNX Runtime: %d / %d agree (%.2f%%); accuracy f32 %.4f, "
              "minnow int8 %.4f, ORT %.4f" % (name, agree, len(labels), 100 * r["agreement"],
                                                r["minnow_f32_accuracy"],
                                                r["minnow_int8_accuracy"], r["ort_accuracy"]),
              flush=True)
        print("%-10s QOperator export: ONNX Runtime %d / %d agree (%d with identical logits); "
              "minnow importing it %d / %d (%d identical)" %
              (name, qop["ort_agree"], len(labels), qop["ort_identical_logits"],
               qop["minnow_import_agree"], len(labels), qop["minnow_import_identical_logits"]),
              flush=True)

    with open(os.path.join(ROOT, "tests/golden/torch_qdq_lenet5.json")) as f:
        meta = json.load(f)
    n = meta["normalization"]
    xt = ((test.astype(np.float32) / np.float32(255) - np.float32(n["mean"])) /
          np.float32(n["std"]))
    xt_npy = os.path.join(work, "torch_x.npy")
    np.save(xt_npy, xt[:, None].astype(np.float32))
    want = np.load(os.path.join(ROOT, "tests/golden", meta["predictions"])).astype(np.int64)
    got = minnow_logits(args.minnow, os.path.join(ROOT, "tests/golden", meta["onnx"]), xt_npy,
                        os.path.join(work, "torch_y.npy"), args.threads).argmax(1)
    agree = int((got == want).sum())
    report["pytorch_qdq"] = {"agree": agree, "agreement": agree / len(want),
                             "minnow_accuracy": float((got == labels).mean()),
                             "pytorch_accuracy": float((want == labels).mean())}
    print("PyTorch-quantized lenet5 (qnnpack) imported: %d / %d agree with PyTorch (%.2f%%); "
          "accuracy minnow %.4f, PyTorch %.4f" % (agree, len(want), 100 * agree / len(want),
                                                  report["pytorch_qdq"]["minnow_accuracy"],
                                                  report["pytorch_qdq"]["pytorch_accuracy"]))
    if args.report_json:
        with open(args.report_json, "w") as f:
            json.dump(report, f, indent=2)
    ok = all(r["agreement"] >= 0.995 and r["qoperator"]["ort_agree"] >= 0.995 * len(labels)
             for r in report["round_trip"].values())
    return 0 if ok and report["pytorch_qdq"]["agreement"] >= 0.995 else 1


if __name__ == "__main__":
    sys.exit(main())
