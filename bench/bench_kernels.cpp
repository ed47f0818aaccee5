// Convolution and pooling kernel timings at batch 64 (2 OpenMP threads unless --threads=N):
// each strategy (im2col+sgemm with k samples per GEMM, oneDNN primitives on plain NCHW, oneDNN
// with its preferred layouts + reorders, hand depthwise loops) for each pass (forward,
// backward-data, backward-weights) on the LeNet-5 and MobileNetV2 shapes, plus the op table's
// fast kernels as a training session runs them. "bwd_both" is both backward passes in one call
// (ConvAlgo::backward, what Conv2d's fast kernel runs; fused for im2col+sgemm and depthwise).
//
// Depthwise, 1 thread, min ms (2026-11-23, shared EPYC, AVX-512), dnnl_any vs hand loops:
//   96ch 28x28 stride 2:  fwd 2.40 vs 3.45   bwd_both 5.55 vs 7.74
//   144ch 14x14:          fwd 1.12 vs 0.85   bwd_both 3.26 vs 2.26
//   192ch 7x7:            fwd 0.21 vs 0.56   bwd_both 0.45 vs 2.30
// hence choose_conv_algo's rule (hand loops for stride 1 and planes of 14x14 or more). Use
// --threads=1 on a busy machine: with 2 threads every parallel region can wait a whole
// scheduler time slice for a preempted thread, which swamps these numbers.
//
//   build/bench_kernels [--threads=2] [--benchmark_filter=lenet]
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/op_registry.h"
#include "core/rng.h"
#include "kernels/conv_dnnl.h"
#include "kernels/conv_gemm.h"
#include "kernels/pool_dnnl.h"
#include "kernels/pool_fast.h"
#include "minnow/graph.h"

namespace minnow {
namespace {

using kernels::ConvGeometry;

struct ConvCase {
  const char* name;
  ConvGeometry g;
};

ConvGeometry conv(int64_t c, int64_t o, int64_t hw, int64_t k, int64_t stride, int64_t pad,
                  int64_t group, int64_t batch = 64) {
  ConvGeometry g;
  g.n = batch;
  g.c = c;
  g.h = g.w = hw;
  g.o = o;
  g.kh = g.kw = k;
  g.sh = g.sw = stride;
  g.pt = g.pl = g.pb = g.pr = pad;
  g.group = group;
  g.has_bias = true;
  return g;
}

std::vector<ConvCase> conv_cases() {
  return {
      {"lenet_conv1", conv(1, 6, 28, 5, 1, 2, 1)},
      {"lenet_conv2", conv(6, 16, 14, 5, 1, 0, 1)},
      {"mbv2_stem_3x3", conv(3, 32, 28, 3, 1, 1, 1)},
      {"mbv2_pw_16_96_28", conv(16, 96, 28, 1, 1, 0, 1)},
      {"mbv2_dw_16_28", conv(16, 16, 28, 3, 1, 1, 16)},
      {"mbv2_dw_96_s2_28", conv(96, 96, 28, 3, 2, 1, 96)},
      {"mbv2_pw_96_24_14", conv(96, 24, 14, 1, 1, 0, 1)},
      {"mbv2_pw_24_144_14", conv(24, 144, 14, 1, 1, 0, 1)},
      {"mbv2_dw_144_14", conv(144, 144, 14, 3, 1, 1, 144)},
      {"mbv2_pw_144_32_7", conv(144, 32, 7, 1, 1, 0, 1)},
      {"mbv2_pw_32_192_7", conv(32, 192, 7, 1, 1, 0, 1)},
      {"mbv2_dw_192_7", conv(192, 192, 7, 3, 1, 1, 192)},
      {"mbv2_pw_192_64_7", conv(192, 64, 7, 1, 1, 0, 1)},
  };
}

std::vector<float> random_vec(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = rng.uniform(-1.0f, 1.0f);
  return v;
}

// Tensors of one convolution case, shared by every strategy.
struct ConvData {
  explicit ConvData(const ConvGeometry& g)
      : x(random_vec(g.n * g.c * g.h * g.w, 1)),
        w(random_vec(g.o * g.col_rows(), 2)),
        b(random_vec(g.o, 3)),
        y(g.n * g.o * g.ohw()),
        dy(random_vec(g.n * g.o * g.ohw(), 4)),
        dx(x.size()),
        dw(w.size()),
        db(b.size()) {}
  std::vector<float> x, w, b, y, dy, dx, dw, db;
};

// Besides the mean, reports the fastest single call ("min_ms"): on a shared 2-core machine the
// mean is at the mercy of other processes, the minimum much less so.
template <class F>
void run_timed(benchmark::State& st, F&& fn) {
  double best = 1e30;
  for (auto _ : st) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(
        best,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  st.counters["min_ms"] = best;
}

void register_conv(const ConvCase& c) {
  using kernels::ConvStrategy;
  // Data and kernels are created when a benchmark of this case first runs, so that a filtered
  // run does not pay for every case.
  struct Lazy {
    ConvGeometry g;
    std::shared_ptr<ConvData> data;
    std::shared_ptr<kernels::ConvAlgo> algo[5];
  };
  auto lazy = std::make_shared<Lazy>();
  lazy->g = c.g;
  const char* labels[5] = {"gemm", "dnnl_plain", "dnnl_any", "chosen", "depthwise"};
  for (int v = 0; v < 5; ++v) {
    if (v == 4 && !c.g.is_depthwise()) continue;
    auto get = [lazy, v]() -> kernels::ConvAlgo& {
      if (!lazy->data) lazy->data = std::make_shared<ConvData>(lazy->g);
      if (!lazy->algo[v]) {
        lazy->algo[v] = v == 3   ? kernels::choose_conv_algo(lazy->g)
                        : v == 4 ? kernels::make_conv_strategy(lazy->g, ConvStrategy::kDepthwise)
                                 : kernels::make_conv_strategy(lazy->g, ConvStrategy(v));
      }
      return *lazy->algo[v];
    };
    std::string base = std::string(c.name) + "/";
    std::string label = labels[v];
    auto reg = [&](const std::string& pass, auto body) {
      benchmark::RegisterBenchmark((base + pass + "/" + label).c_str(),
                                   [lazy, get, body](benchmark::State& st) {
                                     kernels::ConvAlgo& a = get();
                                     ConvData& d = *lazy->data;
                                     // The weight gradient follows a training forward.
                                     a.forward(d.x.data(), d.w.data(), d.b.data(), d.y.data(),
                                               true);
                                     st.SetLabel(a.name());
                                     run_timed(st, [&] { body(a, d); });
                                   })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MinTime(0.2);
    };
    reg("fwd", [](kernels::ConvAlgo& a, ConvData& d) {
      a.forward(d.x.data(), d.w.data(), d.b.data(), d.y.data(), true);
    });
    reg("bwd_data", [](kernels::ConvAlgo& a, ConvData& d) {
      a.backward_data(d.dy.data(), d.w.data(), d.dx.data());
    });
    reg("bwd_weights", [](kernels::ConvAlgo& a, ConvData& d) {
      a.backward_weights(d.x.data(), d.dy.data(), d.dw.data(), d.db.data());
    });
    // Both passes as the fast Conv2d kernel runs them (fused where the strategy can).
    reg("bwd_both", [](kernels::ConvAlgo& a, ConvData& d) {
      a.backward(d.x.data(), d.dy.data(), d.w.data(), d.dx.data(), d.dw.data(), d.db.data());
    });
  }
}

struct PoolCase {
  const char* name;
  kernels::PoolGeometry g;
  bool max;
};

std::vector<PoolCase> pool_cases() {
  auto pool = [](int64_t c, int64_t hw, int64_t k, int64_t s, int64_t pad) {
    kernels::PoolGeometry g;
    g.n = 64;
    g.c = c;
    g.h = g.w = hw;
    g.kh = g.kw = k;
    g.sh = g.sw = s;
    g.pt = g.pl = g.pb = g.pr = pad;
    return g;
  };
  return {{"lenet_pool1_max2x2", pool(6, 28, 2, 2, 0), true},
          {"lenet_pool2_max2x2", pool(16, 10, 2, 2, 0), true},
          {"max3x3_s2_p1_32x28", pool(32, 28, 3, 2, 1), true},
          {"avg2x2_16x10", pool(16, 10, 2, 2, 0), false}};
}

// Pooling: the hand loops of pool_fast.h against oneDNN's pooling on plain NCHW.
void register_pool(const PoolCase& c) {
  struct Data {
    kernels::PoolGeometry g;
    std::vector<float> x, y, dy, dx;
    std::unique_ptr<kernels::MaxPoolFast> max;
    std::unique_ptr<kernels::AvgPoolFast> avg;
    std::unique_ptr<kernels::PoolDnnl> dnnl;
    void init(bool is_max) {
      if (!x.empty()) return;
      x = random_vec(g.n * g.c * g.h * g.w, 1);
      dy = random_vec(g.n * g.c * g.oh() * g.ow(), 2);
      y.resize(dy.size());
      dx.resize(x.size());
      if (is_max) {
        max = std::make_unique<kernels::MaxPoolFast>(g);
      } else {
        avg = std::make_unique<kernels::AvgPoolFast>(g);
      }
      dnnl = std::make_unique<kernels::PoolDnnl>(g, is_max);
    }
  };
  auto d = std::make_shared<Data>();
  d->g = c.g;
  const bool is_max = c.max;
  auto reg = [&](const std::string& name, std::function<void(Data&)> body) {
    benchmark::RegisterBenchmark((std::string(c.name) + "/" + name).c_str(),
                                 [d, is_max, body](benchmark::State& st) {
                                   d->init(is_max);
                                   // Backward follows a training forward (argmax kept).
                                   if (d->max) d->max->forward(d->x.data(), d->y.data(), true);
                                   d->dnnl->forward(d->x.data(), d->y.data());
                                   run_timed(st, [&] { body(*d); });
                                 })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(0.2);
  };
  reg("fwd/hand", [](Data& d) {
    if (d.max) d.max->forward(d.x.data(), d.y.data(), true);
    if (d.avg) d.avg->forward(d.x.data(), d.y.data());
  });
  reg("bwd/hand", [](Data& d) {
    if (d.max) d.max->backward(d.x.data(), d.dy.data(), d.dx.data());
    if (d.avg) d.avg->backward(d.dy.data(), d.dx.data());
  });
  reg("fwd/dnnl", [](Data& d) { d.dnnl->forward(d.x.data(), d.y.data()); });
  reg("bwd/dnnl", [](Data& d) { d.dnnl->backward(d.dy.data(), d.dx.data()); });
}

}  // namespace
}  // namespace minnow

int main(int argc, char** argv) {
  int threads = 2;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::atoi(argv[i] + 10);
    } else {
      args.push_back(argv[i]);
    }
  }
  omp_set_num_threads(threads);
  for (const auto& c : minnow::conv_cases()) minnow::register_conv(c);
  for (const auto& c : minnow::pool_cases()) minnow::register_pool(c);
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
