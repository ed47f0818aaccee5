// Whole-network int8 against fp32 (issue 6: int8 >= 2x fp32 at batch 1, >= 2.5x at batch 256):
// zoo networks (random weights, trained-looking BatchNorm statistics, 1x28x28 input), quantized
// post-training on random images (speed does not depend on what calibration saw). Both run in
// the InferenceSession with fast kernels, as `minnow bench` runs them. Then a per-op profile of
// the int8 graph as the session runs it (int8 activations channels-last) and of the same graph
// without passes/channels_last.h (NCHW, every QLinearConv reordering its input and output).
//
//   g++ -O2 -std=c++20 -fopenmp -Iinclude -Isrc bench/bench_int8_models.cpp \
//       build-export/libminnow_core.a build-export/libminnow_onnx.a \
//       build-export/libminnow_runtime.a -ldnnl -lz -lonnx_proto -lprotobuf \
//       -o build-export/bench_int8_models
//   build-export/bench_int8_models [--threads=1] [--models=resnet8,mobilenet_v2]
//                                  [--batches=1,256] [--seconds=1.5]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "compress/quantize.h"
#include "core/op_registry.h"
#include "core/rng.h"
#include "minnow/zoo.h"
#include "passes/channels_last.h"
#include "passes/fold_batchnorm.h"
#include "passes/fold_constants.h"
#include "passes/fuse_activation.h"
#include "passes/lower_qdq.h"
#include "passes/simplify_for_inference.h"
#include "runtime/inference_session.h"

namespace minnow {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_budget = 1.5;

Tensor random_images(int64_t n, uint64_t seed) {
  Rng rng(seed);
  Tensor x(DType::kF32, {n, 1, 28, 28});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = rng.uniform(0.0f, 1.0f);
  return x;
}

Graph float_model(const std::string& name) {
  zoo::ZooOptions o;
  o.input_shape = {1, 28, 28};
  o.classes = 10;
  o.seed = 1;
  Graph g = zoo::build(name, o);
  Rng rng(2);
  for (const Node& n : g.nodes) {
    if (n.op != OpKind::kBatchNorm) continue;
    for (size_t i = 1; i <= 4; ++i) {
      Tensor& t = g.initializers.at(n.inputs[i]).value;
      for (int64_t k = 0; k < t.numel(); ++k) {
        t.f32()[k] = i == 4 ? rng.uniform(0.5f, 2.0f) : rng.uniform(-0.5f, 0.5f);
      }
    }
  }
  return g;
}

Graph quantized(const Graph& f) {
  Graph g = f;
  data::Dataset calib;
  calib.x = random_images(256, 3);
  calib.y = Tensor(DType::kI64, {256});
  calib.num_classes = 10;
  compress::QuantizeOptions opts;
  opts.calibration.samples = 256;
  compress::quantize_post_training(g, calib, data::Normalization{}, opts);
  return g;
}

// Median seconds of `fn` over repetitions lasting about `seconds_budget`.
template <class F>
double median_seconds(F&& fn) {
  fn();
  fn();
  std::vector<double> t;
  const auto start = Clock::now();
  while (t.size() < 5 ||
         (std::chrono::duration<double>(Clock::now() - start).count() < seconds_budget &&
          t.size() < 2000)) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  return t[t.size() / 2];
}

double session_seconds(const Graph& g, const Tensor& x) {
  InferenceSession s(g, KernelChoice::kFast, true);
  const std::map<std::string, Tensor> feeds{{g.inputs[0].name, x}};
  return median_seconds([&] { s.run(feeds); });
}

// The session's rewrites up to and including lower_qdq (InferenceSession's constructor).
Graph lowered(Graph g) {
  simplify_for_inference(g);
  fold_constants(g, /*keep_dequantize=*/true);
  fold_batchnorm(g);
  fuse_activation(g, {OpKind::kConv2d, OpKind::kLinear, OpKind::kBatchNorm});
  if (lower_qdq(g) > 0) fold_constants(g);
  return g;
}

// Runs g node by node with fast kernels and sums each node's time by a label (op name, with the
// convolution kind), over the median run.
std::map<std::string, double> profile(const Graph& g, const Tensor& x) {
  const int64_t batch = x.dim(0);
  auto info = g.infer_shapes(batch);
  std::map<std::string, Tensor> values;
  for (const auto& [name, init] : g.initializers) values[name] = init.value;
  values[g.inputs[0].name] = x;
  struct Step {
    std::unique_ptr<Kernel> k;
    std::vector<Tensor*> in, out;
    std::string label;
  };
  std::vector<Step> steps;
  for (const Node& n : g.nodes) {
    Step s;
    InputInfos in;
    std::vector<ValueInfo> out;
    for (const std::string& v : n.inputs) {
      in.push_back(v.empty() ? nullptr : &info.at(v));
      s.in.push_back(v.empty() ? nullptr : &values.at(v));
    }
    for (const std::string& v : n.outputs) {
      out.push_back(info.at(v));
      values[v] = Tensor(info.at(v).dtype, info.at(v).shape);
      s.out.push_back(&values.at(v));
    }
    s.k = make_kernel(n, in, out, KernelChoice::kFast);
    s.label = op_def(n.op).name;
    if (n.op == OpKind::kQLinearConv || n.op == OpKind::kConv2d) {
      const Tensor& w = g.initializers.at(n.inputs[n.op == OpKind::kConv2d ? 1 : 3]).value;
      const bool dw = n.attrs.get_int("group", 1) > 1;
      s.label += dw ? " dw" : (w.dim(2) == 1 && w.dim(3) == 1 ? " 1x1" : " kxk");
    }
    steps.push_back(std::move(s));
  }
  RunContext ctx;
  std::vector<std::vector<double>> per(steps.size());
  for (int rep = 0; rep < 3; ++rep) {
    for (Step& s : steps) s.k->forward(s.in, s.out, ctx);
  }
  const auto start = Clock::now();
  int reps = 0;
  while (reps < 5 ||
         (std::chrono::duration<double>(Clock::now() - start).count() < seconds_budget &&
          reps < 1000)) {
    for (size_t i = 0; i < steps.size(); ++i) {
      const auto t0 = Clock::now();
      steps[i].k->forward(steps[i].in, steps[i].out, ctx);
      per[i].push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    ++reps;
  }
  std::map<std::string, double> total;
  for (size_t i = 0; i < steps.size(); ++i) {
    std::nth_element(per[i].begin(), per[i].begin() + per[i].size() / 2, per[i].end());
    total[steps[i].label] += per[i][per[i].size() / 2];
  }
  return total;
}

void print_profile(const std::string& title, const std::map<std::string, double>& p,
                   double scale_ms) {
  double sum = 0;
  for (const auto& [k, v] : p) sum += v;
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [k, v] : p) rows.push_back({v, k});
  std::sort(rows.rbegin(), rows.rend());
  std::printf("    %s: %.3f ms\n", title.c_str(), sum * scale_ms);
  for (const auto& [v, k] : rows) {
    if (v < 0.01 * sum) continue;
    std::printf("      %-26s %8.3f ms %5.1f%%\n", k.c_str(), v * scale_ms, 100 * v / sum);
  }
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

}  // namespace
}  // namespace minnow

int main(int argc, char** argv) {
  using namespace minnow;
  int threads = 1;
  std::vector<std::string> models = {"resnet8", "mobilenet_v2"};
  std::vector<int64_t> batches = {1, 256};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--threads=", 0) == 0) threads = std::stoi(a.substr(10));
    if (a.rfind("--models=", 0) == 0) models = split(a.substr(9));
    if (a.rfind("--seconds=", 0) == 0) seconds_budget = std::stod(a.substr(10));
    if (a.rfind("--batches=", 0) == 0) {
      batches.clear();
      for (const std::string& b : split(a.substr(10))) batches.push_back(std::stoll(b));
    }
  }
  omp_set_num_threads(threads);
  std::printf("threads %d; batch 1: median latency; larger batches: samples/s\n", threads);
  for (const std::string& m : models) {
    const Graph f = float_model(m);
    const Graph q = quantized(f);
    const Graph nchw = lowered(q);
    Graph nhwc = nchw;
    const ChannelsLastResult r = channels_last(nhwc);
    std::printf("%s: channels-last pass: %d regions, %d nodes, %d transposes\n", m.c_str(),
                r.regions, r.nodes, r.transposes);
    for (int64_t b : batches) {
      const Tensor x = random_images(b, 9);
      const double tf = session_seconds(f, x), tq = session_seconds(q, x);
      if (b == 1) {
        std::printf("  batch 1:   fp32 %.3f ms  int8 %.3f ms  int8/fp32 speedup x%.2f\n", tf * 1e3,
                    tq * 1e3, tf / tq);
      } else {
        std::printf("  batch %lld: fp32 %.0f/s  int8 %.0f/s  int8/fp32 speedup x%.2f\n",
                    static_cast<long long>(b), b / tf, b / tq, tf / tq);
      }
      print_profile("int8 profile, channels-last (as the session runs it)", profile(nhwc, x), 1e3);
      print_profile("int8 profile without the channels-last pass", profile(nchw, x), 1e3);
      print_profile("fp32 profile", profile(lowered(f), x), 1e3);
    }
  }
  return 0;
}
