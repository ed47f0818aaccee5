// The op table (DESIGN.md §2): one row per OpKind, each row defined in its family's file.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "core/kernel.h"
#include "minnow/graph.h"

namespace minnow {

// Concrete or symbolic shapes of a node's inputs; absent optional inputs are nullptr.
using InputInfos = std::vector<const ValueInfo*>;

// Fills `out` (already sized to the node's output count, names set) with dtypes and shapes.
// Validates attributes and input shapes; throws minnow::Error naming the node.
using InferFn = void (*)(const Node& node, const InputInfos& in, std::vector<ValueInfo>& out);
// Builds a kernel for concrete shapes. Reference kernels support f32 and f64 (the f64 path is
// the oracle for finite-difference gradient checks); fast kernels support f32.
using MakeKernelFn = std::unique_ptr<Kernel> (*)(const Node& node, const InputInfos& in,
                                                 const std::vector<ValueInfo>& out);
// Multiply-accumulates of one forward pass for the given shapes.
using MacsFn = int64_t (*)(const Node& node, const InputInfos& in,
                           const std::vector<ValueInfo>& out);

struct OpDef {
  OpKind kind;
  const char* name;
  int min_inputs;
  int max_inputs;
  int num_outputs;  // -1: variadic (Split), taken from the node
  InferFn infer;
  MakeKernelFn reference;
  MakeKernelFn fast;  // nullptr when the reference kernel is the only one
  bool has_gradient;  // Kernel::backward implemented by both kernels
  MacsFn macs;        // nullptr: no MACs (elementwise, layout)
};

const OpDef& op_def(OpKind kind);
// Throws minnow::Error for unknown names.
OpKind op_kind_from_name(std::string_view name);

// Which kernel a session asks for. kFast falls back to the reference where no fast one exists.
enum class KernelChoice { kReference, kFast };
std::unique_ptr<Kernel> make_kernel(const Node& node, const InputInfos& in,
                                    const std::vector<ValueInfo>& out, KernelChoice choice);

}  // namespace minnow
