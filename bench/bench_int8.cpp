// int8 convolution (QLinearConv's fast kernel: oneDNN u8s8 with VNNI) against minnow's fp32
// Conv2d fast kernel on MobileNetV2-like layers, both as the op table builds them, at batch 1
// and 64. Times are the minimum over repetitions (1 OpenMP thread unless --threads=N); the int8
// time includes the NCHW <-> oneDNN layout reorders of input and output that the op performs.
//
//   g++ -O2 -std=c++20 -fopenmp -Iinclude -Isrc bench/bench_int8.cpp \
//       build-export/libminnow_runtime.a -ldnnl -lz -o build-export/bench_int8
//   build-export/bench_int8 [--threads=1]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/op_registry.h"
#include "core/rng.h"
#include "kernels/qconv_dnnl.h"
#include "minnow/graph.h"

namespace minnow {
namespace {

struct Layer {
  const char* name;
  int64_t c, o, hw, k, stride, pad, group;
};

Node conv_node(OpKind op, const Layer& l, std::vector<std::string> inputs) {
  Node n;
  n.name = l.name;
  n.op = op;
  n.inputs = std::move(inputs);
  n.outputs = {"y"};
  n.attrs.set("strides", std::vector<int64_t>{l.stride, l.stride});
  n.attrs.set("pads", std::vector<int64_t>{l.pad, l.pad, l.pad, l.pad});
  n.attrs.set("group", l.group);
  n.attrs.set("activation", std::string("relu6"));
  return n;
}

// Minimum milliseconds per forward of the fast kernel of `n` over `inputs`.
double time_op(const Node& n, std::vector<Tensor>& inputs) {
  std::vector<ValueInfo> infos;
  InputInfos ptrs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    infos.push_back(ValueInfo{n.inputs[i], inputs[i].dtype(), inputs[i].shape()});
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    ptrs.push_back(inputs[i].defined() ? &infos[i] : nullptr);
  }
  std::vector<ValueInfo> out(1);
  out[0].name = "y";
  op_def(n.op).infer(n, ptrs, out);
  auto k = make_kernel(n, ptrs, out, KernelChoice::kFast);
  Tensor y(out[0].dtype, out[0].shape);
  std::vector<Tensor*> ip, op{&y};
  for (Tensor& t : inputs) ip.push_back(t.defined() ? &t : nullptr);
  RunContext ctx;
  k->forward(ip, op, ctx);  // first call prepares the primitives
  double best = 1e30;
  const auto start = std::chrono::steady_clock::now();
  for (int rep = 0; rep < 200; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    k->forward(ip, op, ctx);
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
    if (rep >= 10 && std::chrono::duration<double>(t1 - start).count() > 1.5) break;
  }
  return best;
}

Tensor filled(DType dt, Shape s, Rng& rng) {
  Tensor t(dt, std::move(s));
  auto* p = static_cast<uint8_t*>(t.raw());
  if (dt == DType::kF32) {
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = rng.uniform(-1, 1);
  } else {
    for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<uint8_t>(rng.below(256));
  }
  return t;
}

Tensor scalar(DType dt, float v) {
  Tensor t(dt, {});
  if (dt == DType::kF32) {
    t.f32()[0] = v;
  } else {
    *static_cast<uint8_t*>(t.raw()) = static_cast<uint8_t>(v);
  }
  return t;
}

// The oneDNN implementation QLinearConv's kernel picks for this layer.
std::string int8_impl(const Layer& l, int64_t batch) {
  kernels::ConvGeometry g;
  g.n = batch;
  g.c = l.c;
  g.h = g.w = l.hw;
  g.o = l.o;
  g.kh = g.kw = l.k;
  g.sh = g.sw = l.stride;
  g.pt = g.pl = g.pb = g.pr = l.pad;
  g.group = l.group;
  g.has_bias = true;
  kernels::QConvDnnl q(g, DType::kU8, DType::kU8);
  std::vector<float> ws(l.o, 0.01f);
  std::vector<int32_t> b(l.o, 0);
  std::vector<int8_t> w(static_cast<size_t>(l.o * g.col_rows()), 1);
  std::vector<uint8_t> x(static_cast<size_t>(batch * l.c * l.hw * l.hw), 1);
  std::vector<uint8_t> y(static_cast<size_t>(batch * l.o * g.ohw()));
  kernels::QLinearParams p;
  p.x_scale = 0.02f;
  p.x_zp = 128;
  p.w_scale = ws.data();
  p.w_count = l.o;
  p.bias = b.data();
  p.y_scale = 0.05f;
  p.y_zp = 0;
  p.act_lo = 0;
  p.act_hi = 6;
  q.forward(p, x.data(), w.data(), y.data());
  return q.impl();
}

}  // namespace
}  // namespace minnow

int main(int argc, char** argv) {
  using namespace minnow;
  int threads = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) threads = std::atoi(argv[i] + 10);
  }
  omp_set_num_threads(threads);
  const std::vector<Layer> layers{
      {"1x1 96->24 14x14", 96, 24, 14, 1, 1, 0, 1},
      {"1x1 144->24 14x14", 144, 24, 14, 1, 1, 0, 1},
      {"dw3x3 144 14x14", 144, 144, 14, 3, 1, 1, 144},
      {"dw3x3 144 28x28 s2", 144, 144, 28, 3, 2, 1, 144},
      {"3x3 16->16 28x28", 16, 16, 28, 3, 1, 1, 1},
      {"3x3 3->32 56x56 s2", 3, 32, 56, 3, 2, 1, 1},
  };
  std::printf("threads %d; min ms per forward (relu6 fused), fp32 Conv2d fast vs QLinearConv\n",
              threads);
  std::printf("%-22s %5s %10s %10s %7s  %s\n", "layer", "batch", "fp32 ms", "int8 ms", "speedup",
              "oneDNN int8 impl");
  Rng rng(1);
  for (int64_t batch : {1, 64}) {
    for (const Layer& l : layers) {
      const int64_t cg = l.c / l.group;
      std::vector<Tensor> f{filled(DType::kF32, {batch, l.c, l.hw, l.hw}, rng),
                            filled(DType::kF32, {l.o, cg, l.k, l.k}, rng),
                            filled(DType::kF32, {l.o}, rng)};
      const double t32 = time_op(conv_node(OpKind::kConv2d, l, {"x", "w", "b"}), f);
      Tensor ws(DType::kF32, {l.o});
      for (int64_t i = 0; i < l.o; ++i) ws.f32()[i] = 0.002f + 0.00001f * static_cast<float>(i);
      Tensor w = filled(DType::kI8, {l.o, cg, l.k, l.k}, rng);
      Tensor bias(DType::kI32, {l.o});
      std::vector<Tensor> q{filled(DType::kU8, {batch, l.c, l.hw, l.hw}, rng),
                            scalar(DType::kF32, 0.02f),
                            scalar(DType::kU8, 128),
                            w,
                            ws,
                            Tensor(),
                            scalar(DType::kF32, 0.05f),
                            scalar(DType::kU8, 0),
                            bias};
      const double t8 = time_op(
          conv_node(OpKind::kQLinearConv, l, {"x", "xs", "xz", "w", "ws", "", "ys", "yz", "b"}), q);
      std::printf("%-22s %5lld %10.4f %10.4f %6.2fx  %s\n", l.name, static_cast<long long>(batch),
                  t32, t8, t32 / t8, int8_impl(l, batch).c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}
