// Gather with ONNX semantics: inputs data (any dtype) and indices (i64 or i32, any rank), attribute
// axis (default 0). Output shape = data[:axis] + indices + data[axis+1:]. Negative indices count
// from the end; an index outside [-dim, dim) is a run-time error naming the node (indices are
// data, so infer cannot see them).
//
// Each (outer, index) pair copies one contiguous block of the data's inner dimensions. The
// gradient w.r.t. data is a scatter-add (indices may repeat); indices get none.
#include <cstring>
#include <string>

#include "ops/elementwise.h"
#include "ops/op_defs.h"
#include "ops/shape_util.h"

namespace minnow::ops {
namespace {

int gather_axis(const Node& n, const ValueInfo& data) {
  if (data.shape.empty()) fail(n, "input '" + data.name + "' is a scalar; Gather needs rank >= 1");
  return normalize_axis_attr(n, n.attrs.get_int("axis", 0), data.shape.size(), "axis");
}

void infer_gather(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& data = input(n, in, 0);
  const ValueInfo& idx = input(n, in, 1);
  if (idx.dtype != DType::kI64 && idx.dtype != DType::kI32) {
    fail(n, "indices '" + idx.name + "' have dtype " + std::string(dtype_name(idx.dtype)) +
                ", expected i64 or i32");
  }
  const int axis = gather_axis(n, data);
  if (data.shape[axis] == kDynamic) {
    fail(n, "cannot gather along dimension " + std::to_string(axis) + " of '" + data.name + "' " +
                shape_str(data.shape) + ", the symbolic batch; fix the batch size first");
  }
  out[0].dtype = data.dtype;
  out[0].shape.assign(data.shape.begin(), data.shape.begin() + axis);
  out[0].shape.insert(out[0].shape.end(), idx.shape.begin(), idx.shape.end());
  out[0].shape.insert(out[0].shape.end(), data.shape.begin() + axis + 1, data.shape.end());
}

class GatherKernel final : public Kernel {
 public:
  GatherKernel(std::string node_label, const Shape& data, int axis, DType dtype, DType idx_dtype)
      : label_(std::move(node_label)), dim_(data[axis]), dtype_(dtype), idx_dtype_(idx_dtype) {
    for (int d = 0; d < axis; ++d) outer_ *= data[d];
    for (size_t d = axis + 1; d < data.size(); ++d) inner_ *= data[d];
  }

  void forward(Tensors in, Tensors out, RunContext&) override {
    read_indices(*in[1]);
    const size_t bytes = static_cast<size_t>(inner_) * dtype_size(dtype_);
    const int64_t count = static_cast<int64_t>(idx_.size());
    const int64_t items = outer_ * count;
    if (items == 0 || bytes == 0) return;  // empty output: storage may be null
    const auto* x = static_cast<const std::byte*>(in[0]->raw());
    auto* y = static_cast<std::byte*>(out[0]->raw());
    const int64_t dim = dim_;
#pragma omp parallel for if (items * inner_ >= kParallelMin) schedule(static)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t o = it / count, k = idx_[it % count];
      std::memcpy(y + it * bytes, x + (o * dim + k) * bytes, bytes);
    }
  }

  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (grad_in.size() > 1 && grad_in[1]) grad_in[1]->fill_zero();  // indices: not differentiable
    if (!grad_in[0]) return;
    grad_in[0]->fill_zero();
    if (!grad_out[0]) return;
    read_indices(*in[1]);
    dispatch_float(dtype_, [&]<class T>() {
      T* dx = grad_in[0]->data<T>();
      const T* dy = grad_out[0]->data<T>();
      const int64_t count = static_cast<int64_t>(idx_.size());
      // Parallel over outer slices only: repeated indices collide within one slice, never
      // across slices.
#pragma omp parallel for if (outer_ * count * inner_ >= kParallelMin) schedule(static)
      for (int64_t o = 0; o < outer_; ++o) {
        for (int64_t k = 0; k < count; ++k) {
          T* dst = dx + (o * dim_ + idx_[k]) * inner_;
          const T* src = dy + (o * count + k) * inner_;
          for (int64_t j = 0; j < inner_; ++j) dst[j] += src[j];
        }
      }
    });
  }

 private:
  // Normalizes the indices into idx_ (reused between calls), checking every one before any
  // element moves: an error must not escape an OpenMP region.
  void read_indices(const Tensor& t) {
    idx_.resize(static_cast<size_t>(t.numel()));
    for (int64_t i = 0; i < t.numel(); ++i) {
      const int64_t k = idx_dtype_ == DType::kI64 ? t.data<int64_t>()[i]
                                                  : static_cast<int64_t>(t.data<int32_t>()[i]);
      if (k < -dim_ || k >= dim_) {
        throw Error(label_ + ": index " + std::to_string(k) + " at position " + std::to_string(i) +
                    " of the indices is out of range for a dimension of size " +
                    std::to_string(dim_) + " (expected " + std::to_string(-dim_) + ".." +
                    std::to_string(dim_ - 1) + ")");
      }
      idx_[i] = k < 0 ? k + dim_ : k;
    }
  }

  std::string label_;
  int64_t outer_ = 1, inner_ = 1, dim_;
  DType dtype_, idx_dtype_;
  std::vector<int64_t> idx_;
};

std::unique_ptr<Kernel> make_gather(const Node& n, const InputInfos& in,
                                    const std::vector<ValueInfo>&) {
  const ValueInfo& data = input(n, in, 0);
  const ValueInfo& idx = input(n, in, 1);
  return std::make_unique<GatherKernel>("node '" + n.name + "' (Gather)", data.shape,
                                        gather_axis(n, data), data.dtype, idx.dtype);
}

}  // namespace

const OpDef kGatherDef = {OpKind::kGather, "Gather",    2,       2,    1,
                          infer_gather,    make_gather, nullptr, true, nullptr};

}  // namespace minnow::ops
