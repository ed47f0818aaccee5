// Shared oneDNN state and conversions. All fast kernels run on one CPU engine and stream.
#pragma once

#include <dnnl.hpp>

#include "minnow/tensor.h"

namespace minnow::dnnl_glue {

dnnl::engine& engine();
dnnl::stream& stream();

dnnl::memory::dims dims_of(const Shape& s);
// Plain row-major layout for any rank (nchw for 4-d, nc for 2-d, ...).
dnnl::memory::desc plain_desc(const Shape& s,
                              dnnl::memory::data_type dt = dnnl::memory::data_type::f32);
// Wraps a tensor's storage (no copy).
dnnl::memory wrap(const Tensor& t);
dnnl::memory wrap(const Tensor& t, const dnnl::memory::desc& md);

}  // namespace minnow::dnnl_glue
