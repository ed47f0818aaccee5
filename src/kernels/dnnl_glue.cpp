#include "kernels/dnnl_glue.h"

#include <omp.h>

#include <string>

#include "kernels/spin_team.h"
#include "minnow/error.h"

namespace minnow::dnnl_glue {

dnnl::engine& engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::stream& stream() {
  static dnnl::stream s(engine());
  return s;
}

dnnl::stream& thread_stream() {
  thread_local dnnl::stream s(engine());
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

dnnl::primitive_attr user_scratchpad_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::reorder make_reorder(const dnnl::memory& from, const dnnl::memory& to) {
  return dnnl::reorder(dnnl::reorder::primitive_desc(from, to, user_scratchpad_attr()));
}

Call::Call(const dnnl::primitive& p, const std::vector<std::pair<int, dnnl::memory>>& args)
    : prim_(p) {
  bool has_scratchpad = false;
  for (const auto& [arg, mem] : args) {
    mems_.push_back(mem);
    has_scratchpad = has_scratchpad || arg == DNNL_ARG_SCRATCHPAD;
  }
  if (!has_scratchpad) {
    // Zero unless the primitive was created with scratchpad_mode::user.
    const dnnl_memory_desc_t* md =
        dnnl_primitive_desc_query_md(p.get_primitive_desc(), dnnl_query_scratchpad_md, 0);
    if (md && dnnl_memory_desc_get_size(md) > 0) {
      mems_.push_back(dnnl::memory(dnnl::memory::desc(*md), engine()));
      args_.push_back({DNNL_ARG_SCRATCHPAD, mems_.back().get()});
    }
  }
  for (size_t i = 0; i < args.size(); ++i) args_.push_back({args[i].first, mems_[i].get()});
}

void Call::operator()() const {
  kernels::note_openmp_team();
  dnnl_stream_t s = omp_in_parallel() ? thread_stream().get() : stream().get();
  dnnl_status_t st =
      dnnl_primitive_execute(prim_.get(), s, static_cast<int>(args_.size()), args_.data());
  if (st == dnnl_success) st = dnnl_stream_wait(s);
  if (st != dnnl_success) {
    throw Error("oneDNN primitive execution failed (status " +
                std::to_string(static_cast<int>(st)) + ")");
  }
}

}  // namespace minnow::dnnl_glue
