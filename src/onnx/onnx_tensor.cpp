#include "onnx/onnx_tensor.h"

#include <cstring>
#include <limits>

#include "minnow/error.h"

namespace minnow::onnx {

using ::onnx::TensorProto;

std::optional<DType> dtype_from_onnx(int elem_type) {
  switch (elem_type) {
    case TensorProto::FLOAT:
      return DType::kF32;
    case TensorProto::DOUBLE:
      return DType::kF64;
    case TensorProto::INT64:
      return DType::kI64;
    case TensorProto::INT32:
      return DType::kI32;
    case TensorProto::INT8:
      return DType::kI8;
    case TensorProto::UINT8:
    case TensorProto::BOOL:
      return DType::kU8;
    default:
      return std::nullopt;
  }
}

int dtype_to_onnx(DType t) {
  switch (t) {
    case DType::kF32:
      return TensorProto::FLOAT;
    case DType::kF64:
      return TensorProto::DOUBLE;
    case DType::kI64:
      return TensorProto::INT64;
    case DType::kI32:
      return TensorProto::INT32;
    case DType::kI8:
      return TensorProto::INT8;
    case DType::kU8:
      return TensorProto::UINT8;
  }
  throw Error("dtype has no ONNX element type");
}

std::string onnx_type_name(int elem_type) {
  if (TensorProto::DataType_IsValid(elem_type)) {
    return TensorProto::DataType_Name(static_cast<TensorProto::DataType>(elem_type));
  }
  return "element type " + std::to_string(elem_type);
}

namespace {

template <class Dst, class Field>
void copy_field(const Field& f, Tensor& t, const std::string& what) {
  if (static_cast<int64_t>(f.size()) != t.numel()) {
    throw Error(what + ": holds " + std::to_string(f.size()) + " values, its dims " +
                shape_str(t.shape()) + " need " + std::to_string(t.numel()));
  }
  Dst* d = static_cast<Dst*>(t.raw());
  for (int64_t i = 0; i < t.numel(); ++i) d[i] = static_cast<Dst>(f.Get(static_cast<int>(i)));
}

}  // namespace

Tensor tensor_from_proto(const TensorProto& p, const std::string& what) {
  if (p.data_location() == TensorProto::EXTERNAL) {
    throw Error(what +
                ": external tensor data is not supported (save the model with its "
                "weights inside the .onnx file)");
  }
  std::optional<DType> dt = dtype_from_onnx(p.data_type());
  if (!dt) throw Error(what + ": unsupported tensor type " + onnx_type_name(p.data_type()));
  Shape shape;
  int64_t numel = 1;
  for (int64_t d : p.dims()) {
    if (d < 0) throw Error(what + ": negative dimension " + std::to_string(d));
    if (d > 0 && numel > std::numeric_limits<int64_t>::max() / 4 / d) {
      throw Error(what + ": dimensions too large");
    }
    numel *= d;
    shape.push_back(d);
  }
  // The data must be in the file, so a tensor larger than the file is malformed: checked before
  // allocating, so a corrupt header cannot ask for absurd memory.
  const size_t elem = dtype_size(*dt);
  const size_t want = static_cast<size_t>(numel) * elem;
  if (p.has_raw_data()) {
    if (p.raw_data().size() != want) {
      throw Error(what + ": raw_data has " + std::to_string(p.raw_data().size()) +
                  " bytes, its dims " + shape_str(shape) + " need " + std::to_string(want));
    }
    Tensor t(*dt, shape);
    if (want) std::memcpy(t.raw(), p.raw_data().data(), want);
    if (p.data_type() == TensorProto::BOOL) {
      uint8_t* b = static_cast<uint8_t*>(t.raw());
      for (int64_t i = 0; i < numel; ++i) b[i] = b[i] != 0;
    }
    return t;
  }
  int64_t stored = 0;
  switch (p.data_type()) {
    case TensorProto::FLOAT:
      stored = p.float_data_size();
      break;
    case TensorProto::DOUBLE:
      stored = p.double_data_size();
      break;
    case TensorProto::INT64:
      stored = p.int64_data_size();
      break;
    default:
      stored = p.int32_data_size();
  }
  if (stored != numel) {
    throw Error(what + ": holds " + std::to_string(stored) + " values, its dims " +
                shape_str(shape) + " need " + std::to_string(numel));
  }
  Tensor t(*dt, shape);
  switch (p.data_type()) {
    case TensorProto::FLOAT:
      copy_field<float>(p.float_data(), t, what);
      break;
    case TensorProto::DOUBLE:
      copy_field<double>(p.double_data(), t, what);
      break;
    case TensorProto::INT64:
      copy_field<int64_t>(p.int64_data(), t, what);
      break;
    case TensorProto::INT32:
      copy_field<int32_t>(p.int32_data(), t, what);
      break;
    case TensorProto::INT8:
      copy_field<int8_t>(p.int32_data(), t, what);
      break;
    case TensorProto::BOOL: {
      uint8_t* b = static_cast<uint8_t*>(t.raw());
      for (int64_t i = 0; i < numel; ++i) b[i] = p.int32_data(static_cast<int>(i)) != 0;
      break;
    }
    default:
      copy_field<uint8_t>(p.int32_data(), t, what);
  }
  return t;
}

double element_as_double(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kF32:
      return static_cast<const float*>(t.raw())[i];
    case DType::kF64:
      return static_cast<const double*>(t.raw())[i];
    case DType::kI64:
      return static_cast<double>(static_cast<const int64_t*>(t.raw())[i]);
    case DType::kI32:
      return static_cast<const int32_t*>(t.raw())[i];
    case DType::kI8:
      return static_cast<const int8_t*>(t.raw())[i];
    case DType::kU8:
      return static_cast<const uint8_t*>(t.raw())[i];
  }
  return 0;
}

void tensor_to_proto(const Tensor& t, const std::string& name, TensorProto* p) {
  p->Clear();
  p->set_name(name);
  p->set_data_type(dtype_to_onnx(t.dtype()));
  for (int64_t d : t.shape()) p->add_dims(d);
  // minnow only runs on little-endian machines, ONNX raw_data is little-endian.
  p->set_raw_data(std::string(static_cast<const char*>(t.raw()), t.nbytes()));
}

}  // namespace minnow::onnx
