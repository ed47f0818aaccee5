#include "kernels/dnnl_glue.h"

namespace minnow::dnnl_glue {

dnnl::engine& engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::stream& stream() {
  static dnnl::stream s(engine());
  return s;
}

dnnl::memory::dims dims_of(const Shape& s) { return dnnl::memory::dims(s.begin(), s.end()); }

dnnl::memory::desc plain_desc(const Shape& s, dnnl::memory::data_type dt) {
  dnnl::memory::dims strides(s.size());
  int64_t stride = 1;
  for (size_t i = s.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= s[i];
  }
  return dnnl::memory::desc(dims_of(s), dt, strides);
}

dnnl::memory wrap(const Tensor& t) { return wrap(t, plain_desc(t.shape())); }

dnnl::memory wrap(const Tensor& t, const dnnl::memory::desc& md) {
  return dnnl::memory(md, engine(), const_cast<void*>(t.raw()));
}

}  // namespace minnow::dnnl_glue
