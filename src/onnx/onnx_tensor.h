// Conversions between ONNX TensorProto / element types and minnow tensors / dtypes.
// Shared by the importer and the exporter.
#pragma once

#include <onnx/onnx_pb.h>

#include <optional>
#include <string>

#include "minnow/tensor.h"

namespace minnow::onnx {

// minnow dtype of an ONNX element type (TensorProto_DataType), or nullopt when minnow has none.
std::optional<DType> dtype_from_onnx(int elem_type);
int dtype_to_onnx(DType t);
// ONNX's name of an element type ("FLOAT", "BOOL", ...), for messages.
std::string onnx_type_name(int elem_type);

// Decodes a TensorProto (raw_data or the typed repeated fields). BOOL tensors decode as u8.
// Throws minnow::Error naming `what` for unsupported types, external data, or sizes that do not
// match the dims.
Tensor tensor_from_proto(const ::onnx::TensorProto& p, const std::string& what);
// Element i of a tensor of any dtype, as a double (i64 beyond 2^53 rounds).
double element_as_double(const Tensor& t, int64_t i);

void tensor_to_proto(const Tensor& t, const std::string& name, ::onnx::TensorProto* p);

}  // namespace minnow::onnx
