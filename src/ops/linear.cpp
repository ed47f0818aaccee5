// Dense ops: Linear (y = x W^T + b, W in PyTorch's [out, in] layout) and MatMul (numpy matmul).
//
// Both are matrix products over flattened leading dimensions, so the fast kernels are prebuilt
// kernels::Sgemm objects (oneDNN matmul primitive, or dnnl_sgemm for skinny shapes; see
// gemm.cpp), one per product a step needs. The reference kernels run kernels::gemm_ref.
#include <algorithm>
#include <string>

#include "kernels/gemm.h"
#include "ops/fused_activation.h"
#include "ops/op_defs.h"
#include "ops/op_util.h"

namespace minnow::ops {
namespace {

using kernels::Sgemm;

void require_same_dtype(const Node& n, const ValueInfo& a, const ValueInfo& b) {
  if (a.dtype != b.dtype) {
    fail(n, "input '" + b.name + "' has dtype " + std::string(dtype_name(b.dtype)) +
                " but input '" + a.name + "' has " + std::string(dtype_name(a.dtype)));
  }
}

template <class T>
void zero(T* p, int64_t n) {
  std::fill(p, p + n, T(0));
}

// ---------------------------------------------------------------------------------------------
// Linear

const ValueInfo* linear_bias(const InputInfos& in) { return in.size() > 2 ? in[2] : nullptr; }

void infer_linear(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  FusedActivation::of(n);  // validates the attribute
  const ValueInfo& x = input(n, in, 0);
  const ValueInfo& w = input(n, in, 1);
  require_float(n, x);
  require_float(n, w);
  require_same_dtype(n, x, w);
  require_rank(n, w, 2);
  if (w.shape[0] < 0 || w.shape[1] < 0) {
    fail(n, "weight '" + w.name + "' must have a concrete shape, got " + shape_str(w.shape));
  }
  if (x.shape.empty()) fail(n, "input '" + x.name + "' must have rank >= 1, got a scalar");
  const int64_t features = w.shape[1];
  if (x.shape.back() != features) {
    fail(n, "input '" + x.name + "' has shape " + shape_str(x.shape) + " but weight '" + w.name +
                "' has shape " + shape_str(w.shape) + ": the last input dim must be " +
                std::to_string(features));
  }
  if (const ValueInfo* b = linear_bias(in)) {
    require_float(n, *b);
    require_same_dtype(n, x, *b);
    if (b->shape != Shape{w.shape[0]}) {
      fail(n, "bias '" + b->name + "' has shape " + shape_str(b->shape) + ", expected [" +
                  std::to_string(w.shape[0]) + "]");
    }
  }
  out[0].dtype = x.dtype;
  out[0].shape = x.shape;
  out[0].shape.back() = w.shape[0];
}

int64_t linear_macs(const Node&, const InputInfos& in, const std::vector<ValueInfo>& out) {
  return numel_per_sample(out[0].shape) * in[1]->shape[1];
}

// Shapes of one Linear product: rows = all leading dims of x flattened.
struct LinearDims {
  int64_t rows, in, out;
  bool bias;
};

LinearDims linear_dims(const InputInfos& in) {
  const Shape& x = in[0]->shape;
  const Shape& w = in[1]->shape;
  const int64_t rows = shape_numel(Shape(x.begin(), x.end() - 1));
  return {rows, w[1], w[0], linear_bias(in) != nullptr};
}

// grad_b[j] = sum_i dy[i, j]: a row-at-a-time loop so the inner loop is contiguous.
template <class T>
void column_sums(const T* dy, int64_t rows, int64_t cols, T* sums) {
  zero(sums, cols);
  for (int64_t i = 0; i < rows; ++i) {
    const T* r = dy + i * cols;
    for (int64_t j = 0; j < cols; ++j) sums[j] += r[j];
  }
}

template <class T>
class LinearRef final : public Kernel {
 public:
  LinearRef(LinearDims d, FusedActivation act) : d_(d), act_(act) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    const T* x = in[0]->data<T>();
    const T* w = in[1]->data<T>();
    T* y = out[0]->data<T>();
    kernels::gemm_ref<T>(false, true, d_.rows, d_.out, d_.in, x, w, y, false);
    if (d_.bias) {
      const T* b = in[2]->data<T>();
      for (int64_t i = 0; i < d_.rows; ++i) {
        for (int64_t j = 0; j < d_.out; ++j) y[i * d_.out + j] += b[j];
      }
    }
    act_.apply(y, out[0]->numel());
  }

  void backward(Tensors in, Tensors out, Tensors grad_out, Tensors grad_in, RunContext&) override {
    const T* dy = grad_out[0] ? grad_out[0]->data<T>() : nullptr;
    if (dy && act_.on) {  // through the fused activation first
      masked_.resize(out[0]->numel());
      act_.mask(dy, out[0]->data<T>(), masked_.data(), out[0]->numel());
      dy = masked_.data();
    }
    if (grad_in[0]) {
      T* dx = grad_in[0]->data<T>();
      if (dy) {
        kernels::gemm_ref<T>(false, false, d_.rows, d_.in, d_.out, dy, in[1]->data<T>(), dx, false);
      } else {
        zero(dx, grad_in[0]->numel());
      }
    }
    if (grad_in[1]) {
      T* dw = grad_in[1]->data<T>();
      if (dy) {
        kernels::gemm_ref<T>(true, false, d_.out, d_.in, d_.rows, dy, in[0]->data<T>(), dw, false);
      } else {
        zero(dw, grad_in[1]->numel());
      }
    }
    if (grad_in.size() > 2 && grad_in[2]) {
      T* db = grad_in[2]->data<T>();
      if (dy) {
        column_sums(dy, d_.rows, d_.out, db);
      } else {
        zero(db, d_.out);
      }
    }
  }

 private:
  LinearDims d_;
  FusedActivation act_;
  std::vector<T> masked_;
};

// The three products of a training step, each a prebuilt Sgemm:
//   forward  y[rows,out]  = x[rows,in] · W^T (+ b)
//   grad x   dx[rows,in]  = dy[rows,out] · W[out,in]
//   grad W   dW[out,in]   = dy^T · x
class LinearFast final : public Kernel {
 public:
  LinearFast(LinearDims d, FusedActivation act)
      : d_(d),
        act_(act),
        fwd_(d.rows, d.out, d.in, {.trans_b = true, .with_bias = d.bias}),
        grad_x_(d.rows, d.in, d.out, {}),
        grad_w_(d.out, d.in, d.rows, {.trans_a = true}) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    fwd_.run(in[0]->f32(), in[1]->f32(), out[0]->f32(), d_.bias ? in[2]->f32() : nullptr);
    act_.apply(out[0]->f32(), out[0]->numel());
  }

  void backward(Tensors in, Tensors out, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!grad_out[0]) {
      for (Tensor* g : grad_in) {
        if (g) g->fill_zero();
      }
      return;
    }
    const float* dy = grad_out[0]->f32();
    if (act_.on) {
      masked_.resize(out[0]->numel());
      act_.mask(dy, out[0]->f32(), masked_.data(), out[0]->numel());
      dy = masked_.data();
    }
    // The first layer's input needs no gradient: the session passes nullptr and the largest
    // product of the step is skipped.
    if (grad_in[0]) grad_x_.run(dy, in[1]->f32(), grad_in[0]->f32());
    if (grad_in[1]) grad_w_.run(dy, in[0]->f32(), grad_in[1]->f32());
    if (grad_in.size() > 2 && grad_in[2]) column_sums(dy, d_.rows, d_.out, grad_in[2]->f32());
  }

 private:
  LinearDims d_;
  FusedActivation act_;
  Sgemm fwd_, grad_x_, grad_w_;
  std::vector<float> masked_;  // dy through the fused activation
};

std::unique_ptr<Kernel> make_linear_ref(const Node& n, const InputInfos& in,
                                        const std::vector<ValueInfo>&) {
  LinearDims d = linear_dims(in);
  return dispatch_float(input(n, in, 0).dtype, [&]<class T>() -> std::unique_ptr<Kernel> {
    return std::make_unique<LinearRef<T>>(d, FusedActivation::of(n));
  });
}

std::unique_ptr<Kernel> make_linear_fast(const Node& n, const InputInfos& in,
                                         const std::vector<ValueInfo>&) {
  return std::make_unique<LinearFast>(linear_dims(in), FusedActivation::of(n));
}

// ---------------------------------------------------------------------------------------------
// MatMul: numpy semantics. A rank-1 operand is promoted to a matrix ([K] -> [1,K] on the left,
// [K] -> [K,1] on the right) and the added dim is dropped from the result; leading (batch)
// dims broadcast.

struct MatMulShapes {
  Shape a_batch, b_batch, batch;  // batch dims of A, B (promoted) and of the result
  int64_t m, k, n;
};

// numpy broadcasting of two dims; the symbolic batch dim broadcasts like an unknown size.
bool broadcast_dim(int64_t a, int64_t b, int64_t* out) {
  if (a == b) {
    *out = a;
  } else if (a == 1 || b == 1) {
    *out = a == 1 ? b : a;
  } else if (a == kDynamic || b == kDynamic) {
    *out = a == kDynamic ? b : a;
  } else {
    return false;
  }
  return true;
}

MatMulShapes matmul_shapes(const Node& node, const ValueInfo& a, const ValueInfo& b) {
  if (a.shape.empty() || b.shape.empty()) {
    fail(node,
         "inputs must have rank >= 1, got " + shape_str(a.shape) + " and " + shape_str(b.shape));
  }
  Shape as = a.shape, bs = b.shape;
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  MatMulShapes s;
  s.m = as[as.size() - 2];
  s.k = as.back();
  s.n = bs.back();
  const int64_t kb = bs[bs.size() - 2];
  if (s.k < 0 || kb < 0 || s.n < 0) {
    fail(node, "the contracted and column dims must be concrete, got " + shape_str(a.shape) +
                   " x " + shape_str(b.shape));
  }
  if (s.k != kb) {
    fail(node, "cannot multiply " + shape_str(a.shape) + " by " + shape_str(b.shape) +
                   ": inner dims " + std::to_string(s.k) + " and " + std::to_string(kb) +
                   " differ");
  }
  s.a_batch.assign(as.begin(), as.end() - 2);
  s.b_batch.assign(bs.begin(), bs.end() - 2);
  const size_t rank = std::max(s.a_batch.size(), s.b_batch.size());
  s.batch.assign(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    const size_t ia = i + s.a_batch.size(), ib = i + s.b_batch.size();
    const int64_t da = ia >= rank ? s.a_batch[ia - rank] : 1;
    const int64_t db = ib >= rank ? s.b_batch[ib - rank] : 1;
    if (!broadcast_dim(da, db, &s.batch[i])) {
      fail(node, "batch dims of " + shape_str(a.shape) + " and " + shape_str(b.shape) +
                     " do not broadcast");
    }
  }
  return s;
}

void infer_matmul(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& a = input(n, in, 0);
  const ValueInfo& b = input(n, in, 1);
  require_float(n, a);
  require_float(n, b);
  require_same_dtype(n, a, b);
  MatMulShapes s = matmul_shapes(n, a, b);
  out[0].dtype = a.dtype;
  out[0].shape = s.batch;
  if (a.shape.size() > 1) out[0].shape.push_back(s.m);
  if (b.shape.size() > 1) out[0].shape.push_back(s.n);
}

int64_t matmul_macs(const Node&, const InputInfos& in, const std::vector<ValueInfo>& out) {
  const Shape& a = in[0]->shape;
  return numel_per_sample(out[0].shape) * a.back();
}

// Which A and B matrix each result matrix reads, for concrete shapes.
struct MatMulPlan {
  int64_t m, k, n;
  int64_t a_count, b_count;               // matrices stored in A and B
  std::vector<int64_t> a_index, b_index;  // per result matrix
};

// Flat index of the operand matrix for each result batch position, with size-1 dims broadcast.
std::vector<int64_t> operand_index(const Shape& operand_batch, const Shape& batch) {
  const size_t rank = batch.size(), offset = rank - operand_batch.size();
  std::vector<int64_t> strides(rank, 0);
  int64_t stride = 1;
  for (size_t i = rank; i-- > offset;) {
    const int64_t d = operand_batch[i - offset];
    strides[i] = d == 1 ? 0 : stride;
    stride *= d;
  }
  const int64_t total = shape_numel(batch);
  std::vector<int64_t> index(total);
  std::vector<int64_t> pos(rank, 0);
  for (int64_t t = 0; t < total; ++t) {
    int64_t off = 0;
    for (size_t i = 0; i < rank; ++i) off += pos[i] * strides[i];
    index[t] = off;
    for (size_t i = rank; i-- > 0;) {
      if (++pos[i] < batch[i]) break;
      pos[i] = 0;
    }
  }
  return index;
}

MatMulPlan matmul_plan(const Node& node, const InputInfos& in) {
  MatMulShapes s = matmul_shapes(node, input(node, in, 0), input(node, in, 1));
  MatMulPlan p{s.m, s.k, s.n, shape_numel(s.a_batch), shape_numel(s.b_batch), {}, {}};
  p.a_index = operand_index(s.a_batch, s.batch);
  p.b_index = operand_index(s.b_batch, s.batch);
  return p;
}

// C_t = A_a(t) · B_b(t); the gradients sum over every t that read a broadcast operand.
template <class T>
class MatMulRef final : public Kernel {
 public:
  explicit MatMulRef(MatMulPlan p) : p_(std::move(p)) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    const T* a = in[0]->data<T>();
    const T* b = in[1]->data<T>();
    T* c = out[0]->data<T>();
    for (size_t t = 0; t < p_.a_index.size(); ++t) {
      kernels::gemm_ref<T>(false, false, p_.m, p_.n, p_.k, a + p_.a_index[t] * p_.m * p_.k,
                           b + p_.b_index[t] * p_.k * p_.n, c + t * p_.m * p_.n, false);
    }
  }

  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    for (Tensor* g : grad_in) {
      if (g) g->fill_zero();
    }
    if (!grad_out[0]) return;
    const T* a = in[0]->data<T>();
    const T* b = in[1]->data<T>();
    const T* dc = grad_out[0]->data<T>();
    for (size_t t = 0; t < p_.a_index.size(); ++t) {
      const T* dct = dc + t * p_.m * p_.n;
      if (grad_in[0]) {
        // dA = dC · B^T
        kernels::gemm_ref<T>(false, true, p_.m, p_.k, p_.n, dct, b + p_.b_index[t] * p_.k * p_.n,
                             grad_in[0]->data<T>() + p_.a_index[t] * p_.m * p_.k, true);
      }
      if (grad_in[1]) {
        // dB = A^T · dC
        kernels::gemm_ref<T>(true, false, p_.k, p_.n, p_.m, a + p_.a_index[t] * p_.m * p_.k, dct,
                             grad_in[1]->data<T>() + p_.b_index[t] * p_.k * p_.n, true);
      }
    }
  }

 private:
  MatMulPlan p_;
};

// Same products with prebuilt Sgemms (every batch has the same shape). When B is one matrix
// shared by all of A's matrices, the batch folds into the rows: one big product instead of many.
class MatMulFast final : public Kernel {
 public:
  explicit MatMulFast(MatMulPlan p) : p_(fold(std::move(p))) {
    const int64_t m = p_.m, k = p_.k, n = p_.n;
    fwd_ = std::make_unique<Sgemm>(m, n, k, Sgemm::Options{});
    grad_a_ = std::make_unique<Sgemm>(m, k, n, Sgemm::Options{.trans_b = true});
    grad_b_ = std::make_unique<Sgemm>(k, n, m, Sgemm::Options{.trans_a = true});
    // Broadcast operands receive several products: later ones accumulate.
    if (p_.a_count < static_cast<int64_t>(p_.a_index.size())) {
      grad_a_acc_ =
          std::make_unique<Sgemm>(m, k, n, Sgemm::Options{.trans_b = true, .accumulate = true});
    }
    if (p_.b_count < static_cast<int64_t>(p_.b_index.size())) {
      grad_b_acc_ =
          std::make_unique<Sgemm>(k, n, m, Sgemm::Options{.trans_a = true, .accumulate = true});
    }
  }

  void forward(Tensors in, Tensors out, RunContext&) override {
    const float* a = in[0]->f32();
    const float* b = in[1]->f32();
    float* c = out[0]->f32();
    for (size_t t = 0; t < p_.a_index.size(); ++t) {
      fwd_->run(a + p_.a_index[t] * p_.m * p_.k, b + p_.b_index[t] * p_.k * p_.n,
                c + t * p_.m * p_.n);
    }
  }

  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    if (!grad_out[0]) {
      for (Tensor* g : grad_in) {
        if (g) g->fill_zero();
      }
      return;
    }
    const float* a = in[0]->f32();
    const float* b = in[1]->f32();
    const float* dc = grad_out[0]->f32();
    if (grad_in[0]) {
      accumulate_grad(
          grad_in[0], p_.a_index, p_.m * p_.k, *grad_a_, grad_a_acc_.get(),
          [&](size_t t) { return dc + t * p_.m * p_.n; },
          [&](size_t t) { return b + p_.b_index[t] * p_.k * p_.n; });
    }
    if (grad_in[1]) {
      accumulate_grad(
          grad_in[1], p_.b_index, p_.k * p_.n, *grad_b_, grad_b_acc_.get(),
          [&](size_t t) { return a + p_.a_index[t] * p_.m * p_.k; },
          [&](size_t t) { return dc + t * p_.m * p_.n; });
    }
  }

 private:
  static MatMulPlan fold(MatMulPlan p) {
    const int64_t total = static_cast<int64_t>(p.a_index.size());
    bool a_identity = p.a_count == total;
    for (int64_t t = 0; a_identity && t < total; ++t) a_identity = p.a_index[t] == t;
    if (total > 1 && p.b_count == 1 && a_identity) {
      p.m *= total;
      p.a_count = 1;
      p.a_index = {0};
      p.b_index = {0};
    }
    return p;
  }

  // grad[index[t]] (+)= product(lhs(t), rhs(t)); the first product into each matrix overwrites.
  template <class Lhs, class Rhs>
  void accumulate_grad(Tensor* grad, const std::vector<int64_t>& index, int64_t matrix_size,
                       Sgemm& set, Sgemm* acc, Lhs lhs, Rhs rhs) {
    float* g = grad->f32();
    const int64_t count = grad->numel() / std::max<int64_t>(matrix_size, 1);
    seen_.assign(count, 0);
    for (size_t t = 0; t < index.size(); ++t) {
      float* dst = g + index[t] * matrix_size;
      if (seen_[index[t]]) {
        acc->run(lhs(t), rhs(t), dst);
      } else {
        set.run(lhs(t), rhs(t), dst);
        seen_[index[t]] = 1;
      }
    }
    // Zero-size batch dims leave some matrices untouched.
    for (int64_t i = 0; i < count; ++i) {
      if (!seen_[i]) zero(g + i * matrix_size, matrix_size);
    }
  }

  MatMulPlan p_;
  std::unique_ptr<Sgemm> fwd_, grad_a_, grad_b_, grad_a_acc_, grad_b_acc_;
  std::vector<char> seen_;
};

std::unique_ptr<Kernel> make_matmul_ref(const Node& n, const InputInfos& in,
                                        const std::vector<ValueInfo>&) {
  MatMulPlan p = matmul_plan(n, in);
  return dispatch_float(input(n, in, 0).dtype, [&]<class T>() -> std::unique_ptr<Kernel> {
    return std::make_unique<MatMulRef<T>>(p);
  });
}

std::unique_ptr<Kernel> make_matmul_fast(const Node& n, const InputInfos& in,
                                         const std::vector<ValueInfo>&) {
  return std::make_unique<MatMulFast>(matmul_plan(n, in));
}

}  // namespace

const OpDef kLinearDef = {OpKind::kLinear, "Linear",         2,    3,          1, infer_linear,
                          make_linear_ref, make_linear_fast, true, linear_macs};
const OpDef kMatMulDef = {OpKind::kMatMul, "MatMul",         2,    2,          1, infer_matmul,
                          make_matmul_ref, make_matmul_fast, true, matmul_macs};

}  // namespace minnow::ops
