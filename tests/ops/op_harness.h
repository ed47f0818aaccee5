// Table-driven op checks shared by every op family's test file:
//  - the fast kernel against the reference kernel (forward and backward, f32);
//  - the reference gradient against central finite differences, computed in f64.
#pragma once

#include <string>
#include <vector>

#include "core/op_registry.h"
#include "core/rng.h"
#include "minnow/graph.h"

namespace minnow::testing {

struct OpCase {
  std::string label;             // shown on failure, e.g. "conv 3x3 s2 groups=2"
  Node node;                     // op + attrs; inputs/outputs are named by the harness
  std::vector<Tensor> inputs;    // f32 for float inputs (converted to f64 for grad checks)
  std::vector<bool> check_grad;  // per input: compare its gradient (empty: all float inputs)
  int num_outputs = 1;
  bool training = false;         // RunContext::training
  double fd_tolerance = 1e-6;    // relative+absolute tolerance of the gradient check
  double fast_tolerance = 1e-4;  // relative+absolute tolerance fast vs reference
};

// Random tensor, uniform in [lo, hi).
Tensor random_tensor(Shape shape, Rng& rng, float lo = -1.0f, float hi = 1.0f);
// Integer class labels in [0, classes).
Tensor random_labels(int64_t n, int64_t classes, Rng& rng);
Tensor to_dtype(const Tensor& t, DType dtype);  // f32 <-> f64 (other dtypes unchanged)

// Runs the op once with both kernels and compares outputs and input gradients.
void expect_fast_matches_reference(const OpCase& c);
// Central differences in f64 of L = sum(R * out) for a fixed random R, against backward().
// Checks up to `max_elements` randomly chosen elements per input.
void expect_gradient_matches_finite_difference(const OpCase& c, int max_elements = 60);

// Runs forward with the reference kernel and returns the outputs (dtype as given).
std::vector<Tensor> run_reference(const OpCase& c);
// The same with the given kernel.
std::vector<Tensor> run_forward(const OpCase& c, KernelChoice k);

}  // namespace minnow::testing
