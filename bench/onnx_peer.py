#!/usr/bin/python3
"""Side-by-side inference: minnow against ONNX Runtime on the same ONNX file.

For each model it runs `minnow bench FILE.onnx` and `node bench/ort_bench.js FILE.onnx`
alternately (same batch, thread count, iterations and warm-up), repeats that R times and prints
the medians and their ratios:

  - batch 1 p50 latency. ORT's is also shown with the node binding's own per-call cost taken
    off: ort_bench.js times an Identity model over an input of the same shape in the same
    process, and what that costs (JS -> native call, tensor wrapping, output copy, promise) is
    overhead minnow's C++ loop never pays. The ratio uses ORT minus that overhead.
  - batch B (default 256) throughput in samples/s.
  - peak resident memory of each process (ORT's includes node itself; its baseline before the
    session is created is shown too).

    bench/onnx_peer.py [--models lenet5 mobilenet_v2] [--onnx FILE.onnx ...] [--repeats 3]
                       [--threads 2] [--big-batch 256] [--minnow build/minnow] [--report-json F]

--models are minnow zoo networks with their default input shapes (random weights: speed does
not depend on the values), written to ONNX by `minnow export NAME FILE.onnx`; --onnx adds any
ONNX file with a fixed sample shape (e.g. the torchvision files tests/golden/gen_onnx_golden.py
writes). Both runtimes get the same file, so both parse, optimize and run the same graph.
With --torch-fallback, a zoo model `minnow export` cannot write is exported from its PyTorch twin
(tests/golden/zoo_torch.py: same layers, torch.onnx.export) instead; the report says which.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_json(cmd, report, label):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise RuntimeError("%s failed (exit %d): %s\n%s" %
                           (label, proc.returncode, " ".join(cmd), proc.stdout.strip()))
    with open(report) as f:
        return json.load(f)


# Run in a child process: Linux keeps a process's peak RSS across fork and exec, so torch loaded
# in this driver would become the floor of every benchmark's peak_rss_bytes.
TORCH_TWIN_EXPORT = """
import sys, torch
sys.path.insert(0, sys.argv[3])
import zoo_torch
torch.set_num_threads(1)
torch.manual_seed(0)
model = zoo_torch.build(sys.argv[1], (1, 28, 28), 10).eval()  # the zoo's default shape, classes
torch.onnx.export(model, torch.randn(1, 1, 28, 28), sys.argv[2], opset_version=13,
                  input_names=["input"], output_names=["logits"],
                  dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
"""


def export_torch_twin(name, path):
    """The zoo model's PyTorch twin (tests/golden/zoo_torch.py) through torch.onnx.export."""
    proc = subprocess.run([sys.executable, "-c", TORCH_TWIN_EXPORT, name, path,
                           os.path.join(ROOT, "tests", "golden")], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise RuntimeError("exporting the PyTorch twin of %s failed: %s" %
                           (name, proc.stdout.strip()))


def export_zoo_model(args, name, out_dir):
    """Returns (path, how it was made)."""
    path = os.path.join(out_dir, name + ".onnx")
    proc = subprocess.run([args.minnow, "export", name, path], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode == 0:
        return path, "minnow export"
    if not args.torch_fallback:
        raise RuntimeError("`minnow export %s` failed (exit %d): %s" %
                           (name, proc.returncode, proc.stdout.strip()))
    print("onnx_peer: `minnow export %s` failed (%s); exporting its PyTorch twin instead" %
          (name, proc.stdout.strip()), file=sys.stderr)
    export_torch_twin(name, path)
    return path, "torch twin (tests/golden/zoo_torch.py)"


def median(runs, key):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def measure(args, onnx_path, batch, iters, warmup, tmp):
    """R alternating runs of both sides at one batch size; medians of each side."""
    minnow_runs, ort_runs = [], []
    common = ["--batch", str(batch), "--threads", str(args.threads), "--iters", str(iters),
              "--warmup", str(warmup)]
    m_report = os.path.join(tmp, "minnow.json")
    o_report = os.path.join(tmp, "ort.json")
    for _ in range(args.repeats):
        minnow_runs.append(run_json([args.minnow, "bench", onnx_path] + common +
                                    ["--report-json", m_report], m_report, "minnow bench"))
        ort_runs.append(run_json([args.node, os.path.join(ROOT, "bench", "ort_bench.js"),
                                  onnx_path] + common + ["--report-json", o_report], o_report,
                                 "ort_bench.js"))
    keys = ["latency_ms_p50", "latency_ms_p90", "samples_per_s", "peak_rss_bytes"]
    out = {"minnow": {k: median(minnow_runs, k) for k in keys},
           "ort": {k: median(ort_runs, k) for k in keys +
                   ["identity_latency_ms_p50", "latency_ms_p50_minus_identity",
                    "node_baseline_rss_bytes"]}}
    out["minnow"]["arena_bytes"] = minnow_runs[-1].get("arena_bytes")
    return out


def ratio(a, b):
    return a / b if a and b else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=["lenet5", "mobilenet_v2"],
                    help="zoo models, exported with `minnow export`")
    ap.add_argument("--onnx", nargs="*", default=[], help="more ONNX files to compare on")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--big-batch", type=int, default=256)
    ap.add_argument("--iters", type=int, default=200, help="timed runs at batch 1")
    ap.add_argument("--big-iters", type=int, default=10, help="timed runs at the big batch")
    ap.add_argument("--minnow", default=os.path.join(ROOT, "build", "minnow"))
    ap.add_argument("--node", default="node")
    ap.add_argument("--report-json", help="write all medians as JSON")
    ap.add_argument("--torch-fallback", action="store_true",
                    help="when `minnow export` fails, export the zoo model's PyTorch twin")
    args = ap.parse_args()
    if args.repeats < 1 or args.threads < 1 or args.big_batch < 1:
        sys.exit("onnx_peer: --repeats, --threads and --big-batch must be positive")
    if not os.path.exists(args.minnow):
        sys.exit("onnx_peer: no minnow binary at %s (build it, or pass --minnow)" % args.minnow)

    results = {}
    with tempfile.TemporaryDirectory(prefix="onnx_peer_") as tmp:
        files = []
        for name in args.models:
            try:
                files.append((name,) + export_zoo_model(args, name, tmp))
            except RuntimeError as e:
                print("onnx_peer: skipping %s: %s" % (name, e), file=sys.stderr)
        # Files are labelled with their extension: "mobilenet_v2.onnx" is not the zoo's model.
        files += [(os.path.basename(p), p, "given") for p in args.onnx]
        if len(set(f[0] for f in files)) != len(files):
            sys.exit("onnx_peer: two models share a name: %s" % ", ".join(f[0] for f in files))
        for name, path, origin in files:
            try:
                small = measure(args, path, 1, args.iters, max(10, args.iters // 10), tmp)
                big = measure(args, path, args.big_batch, args.big_iters, 2, tmp)
            except RuntimeError as e:
                print("onnx_peer: skipping %s: %s" % (name, e), file=sys.stderr)
                continue
            results[name] = {"file_bytes": os.path.getsize(path), "onnx_from": origin,
                             "batch_1": small,
                             "batch_%d" % args.big_batch: big}
            print("measured %s" % name, file=sys.stderr, flush=True)

    print("minnow vs ONNX Runtime (onnxruntime-node), %d threads, median of %d runs" %
          (args.threads, args.repeats))
    print("%-20s | %-44s | %-32s | %s" %
          ("", "batch 1 p50 latency (ms)", "batch %d samples/s" % args.big_batch,
           "peak RSS (MB)"))
    print("%-20s | %8s %8s %8s %8s %7s | %10s %10s %8s | %7s %7s %7s" %
          ("model", "minnow", "ORT", "ORT-id", "id", "ORT-id/m", "minnow", "ORT", "m/ORT",
           "minnow", "ORT", "node"))
    mb = 1 << 20
    for name, r in results.items():
        s, b = r["batch_1"], r["batch_%d" % args.big_batch]
        rss_ort = b["ort"]["peak_rss_bytes"]
        rss_min = b["minnow"]["peak_rss_bytes"]
        r["ratios"] = {
            "latency_ort_minus_identity_over_minnow":
                ratio(s["ort"]["latency_ms_p50_minus_identity"], s["minnow"]["latency_ms_p50"]),
            "throughput_minnow_over_ort":
                ratio(b["minnow"]["samples_per_s"], b["ort"]["samples_per_s"]),
            "peak_rss_minnow_over_ort": ratio(rss_min, rss_ort),
        }
        print("%-20s | %8s %8s %8s %8s %7s | %10s %10s %8s | %7s %7s %7s" % (
            name, fmt(s["minnow"]["latency_ms_p50"], ".3f"), fmt(s["ort"]["latency_ms_p50"], ".3f"),
            fmt(s["ort"]["latency_ms_p50_minus_identity"], ".3f"),
            fmt(s["ort"]["identity_latency_ms_p50"], ".3f"),
            fmt(r["ratios"]["latency_ort_minus_identity_over_minnow"], ".2f"),
            fmt(b["minnow"]["samples_per_s"], ".0f"), fmt(b["ort"]["samples_per_s"], ".0f"),
            fmt(r["ratios"]["throughput_minnow_over_ort"], ".2f"),
            fmt(rss_min and rss_min / mb, ".0f"), fmt(rss_ort and rss_ort / mb, ".0f"),
            fmt(b["ort"]["node_baseline_rss_bytes"] and
                b["ort"]["node_baseline_rss_bytes"] / mb, ".0f")))
    print("ORT-id: ORT minus the node binding's per-call cost (id: an Identity model's p50);"
          " ratios > 1 favour minnow. Peak RSS at the big batch; 'node' is node's RSS before"
          " ORT loads.")
    if args.report_json:
        tmp_path = args.report_json + ".tmp"
        with open(tmp_path, "w") as f:
            json.dump({"threads": args.threads, "repeats": args.repeats,
                       "big_batch": args.big_batch, "models": results}, f, indent=1)
        os.replace(tmp_path, args.report_json)
    if not results:
        sys.exit("onnx_peer: nothing measured")


if __name__ == "__main__":
    main()
