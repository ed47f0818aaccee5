// Embedding (PyTorch nn.Embedding): out[..., :] = weight[indices[...], :] for i64 indices of any
// rank and a [V, D] table. The attribute padding_idx (-1: none) names a row that receives no
// gradient, as in PyTorch; the forward pass still reads it.
//
// The weight gradient is a scatter-add of output-gradient rows, summed in token order on one
// thread, so it is deterministic. There is no fast kernel: a gather and a scatter are memory-bound,
// and a row-parallel f32 kernel (tokens bucketed by row with a counting sort, rows shared by
// threads, same summation order) measured 0.8x of these loops on one thread ([8192 tokens, 30000 x
// 256]: fwd+bwd 3.4 ms vs 2.8 ms; [1600, 1000 x 64]: 28 us vs 22 us), and lost far more on a
// loaded 2-core machine, where every OpenMP team wake-up costs milliseconds.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "ops/op_defs.h"
#include "ops/op_util.h"

namespace minnow::ops {
namespace {

int64_t padding_idx(const Node& n, int64_t vocab) {
  const int64_t p = n.attrs.get_int("padding_idx", -1);
  if (p != -1 && (p < 0 || (vocab >= 0 && p >= vocab))) {
    fail(n, "attribute padding_idx must be -1 (none) or in [0, " + std::to_string(vocab) +
                "), got " + std::to_string(p));
  }
  return p;
}

void infer_embedding(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& idx = input(n, in, 0);
  const ValueInfo& w = input(n, in, 1);
  if (idx.dtype != DType::kI64) {
    fail(n, "indices '" + idx.name + "' have dtype " + std::string(dtype_name(idx.dtype)) +
                ", expected i64");
  }
  require_float(n, w);
  require_rank(n, w, 2);
  if (w.shape[0] < 1 || w.shape[1] < 1) {
    fail(n, "weight '" + w.name + "' must have a concrete non-empty shape [V, D], got " +
                shape_str(w.shape));
  }
  padding_idx(n, w.shape[0]);
  out[0].dtype = w.dtype;
  out[0].shape = idx.shape;
  out[0].shape.push_back(w.shape[1]);
}

struct EmbDims {
  int64_t tokens, vocab, dim, pad;
};

EmbDims emb_dims(const Node& n, const InputInfos& in) {
  const int64_t v = in[1]->shape[0];
  return {shape_numel(in[0]->shape), v, in[1]->shape[1], padding_idx(n, v)};
}

class EmbeddingBase : public Kernel {
 protected:
  EmbeddingBase(const Node& node, EmbDims d) : node_(node), d_(d) {}

  // Every index is checked before any row is copied, so a bad batch leaves no half output.
  void check_indices(const int64_t* idx) const {
    for (int64_t t = 0; t < d_.tokens; ++t) {
      if (idx[t] < 0 || idx[t] >= d_.vocab) {
        fail(node_, "index " + std::to_string(idx[t]) + " at position " + std::to_string(t) +
                        " is outside the vocabulary [0, " + std::to_string(d_.vocab) + ")");
      }
    }
  }

  Node node_;
  EmbDims d_;
};

template <class T>
class EmbeddingRef final : public EmbeddingBase {
 public:
  EmbeddingRef(const Node& node, EmbDims d) : EmbeddingBase(node, d) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    const int64_t* idx = in[0]->data<int64_t>();
    check_indices(idx);
    const T* w = in[1]->data<T>();
    T* y = out[0]->data<T>();
    for (int64_t t = 0; t < d_.tokens; ++t) {
      std::memcpy(y + t * d_.dim, w + idx[t] * d_.dim, sizeof(T) * d_.dim);
    }
  }

  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (grad_in[0]) grad_in[0]->fill_zero();  // not reached from a session: indices are i64
    if (!grad_in[1]) return;
    T* dw = grad_in[1]->data<T>();
    grad_in[1]->fill_zero();
    if (!grad_out[0]) return;
    const int64_t* idx = in[0]->data<int64_t>();
    const T* dy = grad_out[0]->data<T>();
    for (int64_t t = 0; t < d_.tokens; ++t) {
      if (idx[t] == d_.pad) continue;
      T* row = dw + idx[t] * d_.dim;
      const T* g = dy + t * d_.dim;
      for (int64_t j = 0; j < d_.dim; ++j) row[j] += g[j];
    }
  }
};

std::unique_ptr<Kernel> make_embedding_ref(const Node& n, const InputInfos& in,
                                           const std::vector<ValueInfo>&) {
  EmbDims d = emb_dims(n, in);
  return dispatch_float(input(n, in, 1).dtype, [&]<class T>() -> std::unique_ptr<Kernel> {
    return std::make_unique<EmbeddingRef<T>>(n, d);
  });
}

}  // namespace

const OpDef kEmbeddingDef = {OpKind::kEmbedding, "Embedding", 2,    2,      1, infer_embedding,
                             make_embedding_ref, nullptr,     true, nullptr};  // a gather: no MACs

}  // namespace minnow::ops
