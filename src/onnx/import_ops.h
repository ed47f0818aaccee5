// Per-op converters of the ONNX importer. Each reads the current node from the context and
// emits minnow nodes (or records a constant). Registered by op_type in one table.
#pragma once

#include <map>
#include <string>

#include "onnx/import_context.h"

namespace minnow::onnx {

using Converter = void (*)(ImportContext&);
using ConverterTable = std::map<std::string, Converter>;

// Shape arithmetic and other all-constant nodes evaluated at import (import_fold.cpp). Returns
// false when the node's inputs are not all constant or the op is not foldable.
bool try_fold(ImportContext& cx);

void add_nn_converters(ConverterTable& t);      // import_ops_nn.cpp
void add_tensor_converters(ConverterTable& t);  // import_ops_tensor.cpp
void add_rnn_converters(ConverterTable& t);     // import_ops_rnn.cpp
void add_quant_converters(ConverterTable& t);   // import_ops_quant.cpp (after tensor)

const ConverterTable& converters();

// Shared by converters: an ONNX axis normalized against `rank` (fails naming the attribute).
int64_t onnx_axis(ImportContext& cx, int64_t axis, int64_t rank, const char* what = "axis");
// A one-element constant of any dtype as a double (Clip's min/max, Pad's constant_value).
double const_scalar(ImportContext& cx, const std::string& name, const std::string& role);
// A constant integer tensor (i64/i32) as a vector, e.g. Reshape's shape input.
std::vector<int64_t> const_ints(ImportContext& cx, const std::string& name,
                                const std::string& role);

}  // namespace minnow::onnx
