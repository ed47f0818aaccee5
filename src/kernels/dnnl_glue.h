// Shared oneDNN state and conversions. All fast kernels run on one CPU engine and stream.
#pragma once

#include <dnnl.hpp>
#include <utility>
#include <vector>

#include "minnow/tensor.h"

namespace minnow::dnnl_glue {

dnnl::engine& engine();
dnnl::stream& stream();
// The calling thread's own stream (for primitives executed inside an OpenMP parallel region:
// a stream is not meant to be used by several threads at once).
dnnl::stream& thread_stream();

dnnl::memory::dims dims_of(const Shape& s);
// Plain row-major layout for any rank (nchw for 4-d, nc for 2-d, ...).
dnnl::memory::desc plain_desc(const Shape& s,
                              dnnl::memory::data_type dt = dnnl::memory::data_type::f32);
// Wraps a tensor's storage (no copy).
dnnl::memory wrap(const Tensor& t);
dnnl::memory wrap(const Tensor& t, const dnnl::memory::desc& md);

// Attributes for primitives whose scratchpad the caller provides (Call does it), so that oneDNN
// does not allocate one on every execution.
dnnl::primitive_attr user_scratchpad_attr();
// A reorder between two memories with a user-provided scratchpad.
dnnl::reorder make_reorder(const dnnl::memory& from, const dnnl::memory& to);

// A primitive bound to fixed memory objects. The C++ wrapper's execute() builds a
// std::unordered_map and a std::vector of arguments on every call; Call builds the C argument
// array once, and runs only repoint the memories (set_data_handle), so executing allocates
// nothing on minnow's side. When the primitive was created with a user scratchpad and no
// DNNL_ARG_SCRATCHPAD is given, Call allocates one of the size the primitive asks for.
class Call {
 public:
  Call() = default;
  Call(const dnnl::primitive& p, const std::vector<std::pair<int, dnnl::memory>>& args);
  // Executes and waits, on stream(), or on thread_stream() inside a parallel region. Throws
  // minnow::Error when oneDNN fails.
  void operator()() const;
  explicit operator bool() const { return static_cast<bool>(prim_); }

 private:
  dnnl::primitive prim_;
  std::vector<dnnl::memory> mems_;  // keeps the argument memories alive
  std::vector<dnnl_exec_arg_t> args_;
};

}  // namespace minnow::dnnl_glue
