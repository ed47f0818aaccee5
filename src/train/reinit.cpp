#include "train/reinit.h"

#include <cmath>

#include "core/rng.h"

namespace minnow {
namespace {

void fill(Tensor& t, float v) {
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = v;
}

void uniform(Tensor& t, Rng& rng, float bound) {
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = rng.uniform(-bound, bound);
}

// Fan-in of a weight read by `op` (PyTorch's convention: all dims but the first).
int64_t fan_in(const Tensor& w) {
  return w.rank() ? w.numel() / std::max<int64_t>(w.dim(0), 1) : 1;
}

}  // namespace

int reinitialize_parameters(Graph& g, uint64_t seed) {
  int count = 0;
  uint64_t index = 0;
  for (const Node& n : g.nodes) {
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      auto it = g.initializers.find(n.inputs[i]);
      if (it == g.initializers.end() || it->second.value.dtype() != DType::kF32) continue;
      Tensor& t = it->second.value;
      Rng rng = Rng::derive(seed, ++index);
      const bool trainable = it->second.trainable;
      switch (n.op) {
        case OpKind::kConv2d:
        case OpKind::kLinear: {
          // kaiming_uniform(a=sqrt(5)) for the weight; the bias U(+-1/sqrt(fan_in)) of it.
          if (!trainable || (i != 1 && i != 2)) continue;
          const Tensor& w =
              g.initializers.count(n.inputs[1]) ? g.initializers.at(n.inputs[1]).value : t;
          uniform(t, rng, 1.0f / std::sqrt(static_cast<float>(std::max<int64_t>(fan_in(w), 1))));
          break;
        }
        case OpKind::kBatchNorm:
        case OpKind::kLayerNorm:
          // scale 1, shift 0, running mean 0, running variance 1
          fill(t, (i == 1 || i == 4) ? 1.0f : 0.0f);
          break;
        case OpKind::kLstm:
        case OpKind::kGru: {
          if (!trainable || i == 0 || i > 4) continue;
          const int64_t h = n.attrs.get_int("hidden_size", 1);
          uniform(t, rng, 1.0f / std::sqrt(static_cast<float>(h)));
          break;
        }
        case OpKind::kEmbedding:
          if (!trainable) continue;
          for (int64_t k = 0; k < t.numel(); ++k) t.f32()[k] = rng.normal();
          break;
        default:
          continue;  // constants of other ops (scales, shapes) keep their values
      }
      ++count;
    }
  }
  return count;
}

}  // namespace minnow
