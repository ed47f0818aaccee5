#include "kernels/dnnl_impl_choice.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <string>

#include "kernels/dnnl_glue.h"

namespace minnow::dnnl_glue {

namespace {

constexpr int kMaxCandidates = 8;
constexpr double kMargin = 0.9;  // another implementation must take <= 90% of the first's time

bool is_jit(const std::string& impl) {
  const bool jit =
      impl.rfind("jit", 0) == 0 || impl.rfind("brg", 0) == 0 || impl.rfind("brdgmm", 0) == 0;
  return jit && impl.find("sse41") == std::string::npos;
}

double microseconds_per_run(const ConvPd& pd, const TimingArgs& args) {
  const Call call(dnnl::convolution_forward(pd), args(pd));
  for (int i = 0; i < 5; ++i) call();
  double best = std::numeric_limits<double>::infinity();
  for (int round = 0; round < 3; ++round) {
    constexpr int kRuns = 20;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kRuns; ++i) call();
    const std::chrono::duration<double, std::micro> t = std::chrono::steady_clock::now() - t0;
    best = std::min(best, t.count() / kRuns);
  }
  return best;
}

}  // namespace

std::vector<int> convolution_candidates(const dnnl::convolution_forward::desc& d,
                                        const dnnl::primitive_attr& attr) {
  ConvPd it(d, attr, engine());
  const dnnl::memory::desc src = it.src_desc(), dst = it.dst_desc();
  std::vector<int> out{0};
  for (int index = 1; static_cast<int>(out.size()) < kMaxCandidates && it.next_impl(); ++index) {
    if (it.src_desc() == src && it.dst_desc() == dst && is_jit(it.impl_info_str())) {
      out.push_back(index);
    }
  }
  return out;
}

ConvPd convolution_impl(const dnnl::convolution_forward::desc& d, const dnnl::primitive_attr& attr,
                        int index) {
  ConvPd pd(d, attr, engine());
  for (int i = 0; i < index; ++i) {
    if (!pd.next_impl()) throw dnnl::error(dnnl_invalid_arguments, "no such implementation");
  }
  return pd;
}

ConvPd fastest_convolution(const dnnl::convolution_forward::desc& d,
                           const dnnl::primitive_attr& attr, const TimingArgs& args) {
  const std::vector<int> candidates = convolution_candidates(d, attr);
  ConvPd first(d, attr, engine());
  if (candidates.size() < 2) return first;
  const double first_us = microseconds_per_run(first, args);
  double best_us = first_us;
  int best = 0;
  for (size_t i = 1; i < candidates.size(); ++i) {
    const double us = microseconds_per_run(convolution_impl(d, attr, candidates[i]), args);
    if (us < best_us) {
      best_us = us;
      best = candidates[i];
    }
  }
  if (best == 0 || best_us > kMargin * first_us) return first;
  return convolution_impl(d, attr, best);
}

dnnl::memory zeroed_memory(const dnnl::memory::desc& md) {
  dnnl::memory m(md, engine());
  std::memset(m.get_data_handle(), 0, md.get_size());
  return m;
}

}  // namespace minnow::dnnl_glue
