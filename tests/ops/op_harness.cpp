#include "op_harness.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "core/op_registry.h"

namespace minnow::testing {
namespace {

struct Prepared {
  Node node;
  std::vector<ValueInfo> in_info, out_info;
  InputInfos in_ptrs;
};

Prepared prepare(const OpCase& c, const std::vector<Tensor>& inputs) {
  Prepared p;
  p.node = c.node;
  if (p.node.name.empty()) p.node.name = "op_under_test";
  p.node.inputs.clear();
  p.node.outputs.clear();
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string name = inputs[i].defined() ? "x" + std::to_string(i) : "";
    p.node.inputs.push_back(name);
    p.in_info.push_back(ValueInfo{name, inputs[i].dtype(), inputs[i].shape()});
  }
  for (int i = 0; i < c.num_outputs; ++i) p.node.outputs.push_back("y" + std::to_string(i));
  for (size_t i = 0; i < inputs.size(); ++i) {
    p.in_ptrs.push_back(inputs[i].defined() ? &p.in_info[i] : nullptr);
  }
  p.out_info.resize(c.num_outputs);
  for (int i = 0; i < c.num_outputs; ++i) p.out_info[i].name = p.node.outputs[i];
  op_def(p.node.op).infer(p.node, p.in_ptrs, p.out_info);
  return p;
}

struct RunResult {
  std::vector<Tensor> outputs;
  std::vector<Tensor> grads;  // per input; undefined where not requested
};

std::vector<Tensor> clone_all(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(t.defined() ? t.clone() : Tensor());
  return out;
}

// Forward (and backward with grad_out = R when R is given) with the chosen kernel.
RunResult run(const OpCase& c, const std::vector<Tensor>& inputs_in, KernelChoice choice,
              const std::vector<Tensor>* seed_grads, const std::vector<bool>& want_grad) {
  std::vector<Tensor> inputs = clone_all(inputs_in);  // state inputs (BN) may be updated
  Prepared p = prepare(c, inputs);
  auto kernel = make_kernel(p.node, p.in_ptrs, p.out_info, choice);
  RunResult r;
  for (const ValueInfo& v : p.out_info) r.outputs.emplace_back(v.dtype, v.shape);
  std::vector<Tensor*> in_ptrs, out_ptrs;
  for (Tensor& t : inputs) in_ptrs.push_back(t.defined() ? &t : nullptr);
  for (Tensor& t : r.outputs) out_ptrs.push_back(&t);
  Rng rng(1234);  // same dropout mask on every run
  RunContext ctx{c.training, &rng};
  kernel->forward(in_ptrs, out_ptrs, ctx);
  if (seed_grads) {
    std::vector<Tensor*> gout, gin;
    std::vector<Tensor> seeds = clone_all(*seed_grads);
    for (Tensor& t : seeds) gout.push_back(&t);
    r.grads.resize(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (want_grad[i]) r.grads[i] = Tensor(inputs[i].dtype(), inputs[i].shape());
      gin.push_back(want_grad[i] ? &r.grads[i] : nullptr);
    }
    kernel->backward(in_ptrs, out_ptrs, gout, gin, ctx);
  }
  return r;
}

std::vector<bool> grad_mask(const OpCase& c) {
  std::vector<bool> m(c.inputs.size(), false);
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    bool is_float = c.inputs[i].defined() && dtype_is_float(c.inputs[i].dtype());
    m[i] = is_float && (c.check_grad.empty() || (i < c.check_grad.size() && c.check_grad[i]));
  }
  return m;
}

double value_at(const Tensor& t, int64_t i) {
  return t.dtype() == DType::kF64 ? t.data<double>()[i] : t.data<float>()[i];
}

void expect_close(const Tensor& a, const Tensor& b, double tol, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  int reported = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    double x = value_at(a, i), y = value_at(b, i);
    if (!(std::abs(x - y) <= tol * (1.0 + std::abs(y)))) {
      ADD_FAILURE() << what << " element " << i << ": " << x << " vs " << y;
      if (++reported >= 5) return;
    }
  }
}

}  // namespace

Tensor random_tensor(Shape shape, Rng& rng, float lo, float hi) {
  Tensor t(DType::kF32, std::move(shape));
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = rng.uniform(lo, hi);
  return t;
}

Tensor random_labels(int64_t n, int64_t classes, Rng& rng) {
  Tensor t(DType::kI64, {n});
  for (int64_t i = 0; i < n; ++i) t.data<int64_t>()[i] = static_cast<int64_t>(rng.below(classes));
  return t;
}

Tensor to_dtype(const Tensor& t, DType dtype) {
  if (!t.defined() || !dtype_is_float(t.dtype()) || t.dtype() == dtype) return t;
  Tensor out(dtype, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (dtype == DType::kF64) {
      out.data<double>()[i] = t.data<float>()[i];
    } else {
      out.data<float>()[i] = static_cast<float>(t.data<double>()[i]);
    }
  }
  return out;
}

std::vector<Tensor> run_reference(const OpCase& c) {
  return run(c, c.inputs, KernelChoice::kReference, nullptr, {}).outputs;
}

std::vector<Tensor> run_forward(const OpCase& c, KernelChoice k) {
  return run(c, c.inputs, k, nullptr, {}).outputs;
}

void expect_fast_matches_reference(const OpCase& c) {
  SCOPED_TRACE(c.label);
  std::vector<bool> want = grad_mask(c);
  const OpDef& def = op_def(c.node.op);
  RunResult fwd = run(c, c.inputs, KernelChoice::kReference, nullptr, want);
  Rng rng(99);
  std::vector<Tensor> seeds;
  for (const Tensor& o : fwd.outputs) seeds.push_back(random_tensor(o.shape(), rng));
  const std::vector<Tensor>* s = def.has_gradient ? &seeds : nullptr;
  RunResult ref = run(c, c.inputs, KernelChoice::kReference, s, want);
  RunResult fast = run(c, c.inputs, KernelChoice::kFast, s, want);
  for (size_t i = 0; i < ref.outputs.size(); ++i) {
    expect_close(fast.outputs[i], ref.outputs[i], c.fast_tolerance, "output " + std::to_string(i));
  }
  if (!s) return;
  for (size_t i = 0; i < ref.grads.size(); ++i) {
    if (want[i]) {
      expect_close(fast.grads[i], ref.grads[i], c.fast_tolerance,
                   "grad of input " + std::to_string(i));
    }
  }
}

void expect_gradient_matches_finite_difference(const OpCase& c, int max_elements) {
  SCOPED_TRACE(c.label);
  ASSERT_TRUE(op_def(c.node.op).has_gradient) << "op has no gradient";
  std::vector<bool> want = grad_mask(c);
  std::vector<Tensor> inputs;
  for (const Tensor& t : c.inputs) inputs.push_back(to_dtype(t, DType::kF64));
  RunResult base = run(c, inputs, KernelChoice::kReference, nullptr, want);
  Rng rng(7);
  std::vector<Tensor> seeds;
  for (const Tensor& o : base.outputs) {
    seeds.push_back(to_dtype(random_tensor(o.shape(), rng), o.dtype()));
  }
  RunResult analytic = run(c, inputs, KernelChoice::kReference, &seeds, want);
  auto loss = [&](const std::vector<Tensor>& xs) {
    RunResult r = run(c, xs, KernelChoice::kReference, nullptr, want);
    double l = 0;
    for (size_t k = 0; k < r.outputs.size(); ++k) {
      if (!dtype_is_float(r.outputs[k].dtype())) continue;
      for (int64_t j = 0; j < r.outputs[k].numel(); ++j) {
        l += value_at(r.outputs[k], j) * value_at(seeds[k], j);
      }
    }
    return l;
  };
  const double eps = 1e-6;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!want[i]) continue;
    int64_t n = inputs[i].numel();
    int checks = static_cast<int>(std::min<int64_t>(n, max_elements));
    for (int k = 0; k < checks; ++k) {
      int64_t j = n <= max_elements ? k : static_cast<int64_t>(rng.below(n));
      std::vector<Tensor> plus = clone_all(inputs), minus = clone_all(inputs);
      plus[i].data<double>()[j] += eps;
      minus[i].data<double>()[j] -= eps;
      double numeric = (loss(plus) - loss(minus)) / (2 * eps);
      double got = analytic.grads[i].data<double>()[j];
      EXPECT_NEAR(got, numeric, c.fd_tolerance * (1.0 + std::abs(numeric)))
          << "d loss / d input " << i << " element " << j;
    }
  }
}

}  // namespace minnow::testing
