// QLinearLookup(x, table) -> y: an elementwise function on quantized data as a table of its 256
// results. x is u8 or i8; table is [256] u8 or i8 and gives y's dtype; y[i] = table[x[i]] for u8
// x and table[x[i] + 128] for i8 x (the table is in code order, lowest code first).
//
// passes/lower_qdq builds the table for DequantizeLinear -> f -> QuantizeLinear (f = HardSwish,
// HardSigmoid, Sigmoid, Tanh, LeakyRelu, Gelu, ...) by running exactly those three nodes on the 256
// codes, so the lookup is bit-identical to the float path it replaces, whatever f is. One byte
// load per element: no kernel of f in int8 is needed.
#include <array>
#include <memory>
#include <string>

#include "ops/op_defs.h"
#include "ops/op_util.h"
#include "ops/quant_util.h"

namespace minnow::ops {
namespace {

constexpr int64_t kTableSize = 256;

void infer_lookup(const Node& n, const InputInfos& in, std::vector<ValueInfo>& out) {
  const ValueInfo& x = input(n, in, 0);
  const ValueInfo& t = input(n, in, 1);
  if (!quant::is_q8(x.dtype)) {
    fail(n, "input '" + x.name + "' has dtype " + std::string(dtype_name(x.dtype)) +
                ", expected u8 or i8");
  }
  if (!quant::is_q8(t.dtype) || t.shape != Shape{kTableSize}) {
    fail(n, "table '" + t.name + "' is " + std::string(dtype_name(t.dtype)) + " " +
                shape_str(t.shape) + ", expected u8 or i8 [256]");
  }
  out[0].dtype = t.dtype;
  out[0].shape = x.shape;
}

class QLinearLookupKernel final : public Kernel {
 public:
  void forward(Tensors in, Tensors out, RunContext&) override {
    const Tensor& x = *in[0];
    std::array<uint8_t, kTableSize> table;
    const auto* t = static_cast<const uint8_t*>(in[1]->raw());
    // For i8 x, code c sits at c + 128: XOR 0x80 of its byte is that index.
    const uint8_t flip = x.dtype() == DType::kI8 ? 0x80 : 0x00;
    for (int k = 0; k < kTableSize; ++k) table[static_cast<size_t>(k ^ flip)] = t[k];
    const auto* xs = static_cast<const uint8_t*>(x.raw());
    auto* ys = static_cast<uint8_t*>(out[0]->raw());
    const int64_t n = x.numel();
    for (int64_t i = 0; i < n; ++i) ys[i] = table[xs[i]];
  }
};

std::unique_ptr<Kernel> make_lookup(const Node&, const InputInfos&, const std::vector<ValueInfo>&) {
  return std::make_unique<QLinearLookupKernel>();
}

}  // namespace

const OpDef kQLinearLookupDef = {OpKind::kQLinearLookup, "QLinearLookup", 2,       2,     1,
                                 infer_lookup,           make_lookup,     nullptr, false, nullptr};

}  // namespace minnow::ops
