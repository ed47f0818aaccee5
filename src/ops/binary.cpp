// Add, Sub, Mul with numpy broadcasting in both directions (the plan and the gradient reduction
// over broadcast dims live in broadcast.h, shared with math_binary.cpp).
#include "ops/broadcast.h"
#include "ops/op_defs.h"
#include "ops/op_util.h"

namespace minnow::ops {
namespace {

struct AddOp {
  template <class T>
  static T apply(T a, T b) {
    return a + b;
  }
};
struct SubOp {
  template <class T>
  static T apply(T a, T b) {
    return a - b;
  }
};
struct MulOp {
  template <class T>
  static T apply(T a, T b) {
    return a * b;
  }
};

template <class T>
class BinaryKernel final : public Kernel {
 public:
  BinaryKernel(OpKind op, const Shape& a, const Shape& b, const Shape& out)
      : op_(op),
        plan_(out, a, b),
        numel_{shape_numel(a), shape_numel(b)},
        reducer_(plan_, numel_) {}

  void forward(Tensors in, Tensors out, RunContext&) override {
    const T* a = in[0]->data<T>();
    const T* b = in[1]->data<T>();
    T* y = out[0]->data<T>();
    switch (op_) {
      case OpKind::kAdd:
        apply_plan<AddOp>(plan_, y, a, b);
        break;
      case OpKind::kSub:
        apply_plan<SubOp>(plan_, y, a, b);
        break;
      default:
        apply_plan<MulOp>(plan_, y, a, b);
        break;
    }
  }

  void backward(Tensors in, Tensors, Tensors grad_out, Tensors grad_in, RunContext&) override {
    for (int k = 0; k < 2; ++k) {
      if (!grad_in[k]) continue;
      T* g = grad_in[k]->data<T>();
      if (!grad_out[0]) {
        grad_in[k]->fill_zero();
        continue;
      }
      const T* dy = grad_out[0]->data<T>();
      const T* other = op_ == OpKind::kMul ? in[1 - k]->data<T>() : nullptr;
      if (numel_[k] == plan_.numel) {
        direct(k, g, dy, other);
      } else {
        reducer_.reduce(plan_, k, g, dy, other);
      }
      if (op_ == OpKind::kSub && k == 1) {
        for_blocks(numel_[k], [g](int64_t lo, int64_t hi) {
          for (int64_t i = lo; i < hi; ++i) g[i] = -g[i];
        });
      }
    }
  }

 private:
  // Input k has the output's shape: each gradient element is written exactly once.
  void direct(int k, T* g, const T* dy, const T* other) {
    if (!other) {
      parallel_copy(g, dy, plan_.numel);
    } else if (k == 0) {
      apply_plan<MulOp>(plan_, g, dy, other);  // dy sits where a was: same offsets as y
    } else {
      apply_plan<MulOp>(plan_, g, other, dy);
    }
  }

  OpKind op_;
  Plan plan_;
  int64_t numel_[2];
  BroadcastReducer<T> reducer_;
};

std::unique_ptr<Kernel> make_binary(const Node& n, const InputInfos& in,
                                    const std::vector<ValueInfo>& out) {
  const ValueInfo& a = input(n, in, 0);
  const ValueInfo& b = input(n, in, 1);
  return dispatch_float(a.dtype, [&]<class T>() -> std::unique_ptr<Kernel> {
    return std::make_unique<BinaryKernel<T>>(n.op, a.shape, b.shape, out[0].shape);
  });
}

}  // namespace

const OpDef kAddDef = {OpKind::kAdd, "Add",       2,       2,    1,
                       infer_binary, make_binary, nullptr, true, nullptr};
const OpDef kSubDef = {OpKind::kSub, "Sub",       2,       2,    1,
                       infer_binary, make_binary, nullptr, true, nullptr};
const OpDef kMulDef = {OpKind::kMul, "Mul",       2,       2,    1,
                       infer_binary, make_binary, nullptr, true, nullptr};

}  // namespace minnow::ops
