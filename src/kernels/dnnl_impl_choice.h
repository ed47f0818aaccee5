// Chooses among oneDNN's implementations of a convolution by timing them on this CPU.
//
// oneDNN lists several implementations of a convolution and takes the first that accepts it.
// For the small layers of a small network at batch 1 the first (brgconv, brdgmm_dw) is often not
// the fastest on this class of CPU: measured at 2 threads on the 2-core dev machine, a depthwise
// 3x3 on 8-72 channels of 14x14-28x28 takes 1.5-1.6 us with jit_dw against 2.2-2.7 us with
// brdgmm_dw, and a 3x3 convolution of one input channel 1.6 us with jit against 2.4 us with
// brgconv (the zoo mobilenet_v2 at batch 1: 0.063 -> 0.057 ms; channel-pruned to 30% of its
// MACs: 0.042 -> 0.035 ms). Kernels of small layers therefore time every JIT implementation
// that keeps the first one's activation layouts and keep the fastest.
#pragma once

#include <cstdint>
#include <dnnl.hpp>
#include <string>
#include <utility>
#include <vector>

namespace minnow::dnnl_glue {

// Layers of up to this many MACs per call are worth timing; larger calls are long enough that
// oneDNN's own choice is right.
constexpr int64_t kTimedChoiceMaxMacs = 4'000'000;

using ConvPd = dnnl::convolution_forward::primitive_desc;
// Arguments a timed run needs besides source, weights, bias and destination (post-op inputs,
// zero points), by descriptor; they are given zeros.
using ExtraArgs = std::vector<std::pair<int, dnnl::memory::desc>>;

// oneDNN's implementations worth timing: its own choice first, then every other JIT
// implementation (brgconv, brdgmm, jit; not the SSE4.1, gemm or reference ones) whose source and
// destination layouts are those of the first, each once, at most 8 in all. (Collected in one
// pass: the position of an implementation in oneDNN's list is not stable, since a primitive
// already in oneDNN's cache is listed first once more.)
std::vector<ConvPd> convolution_candidates(const dnnl::convolution_forward::desc& d,
                                           const dnnl::primitive_attr& attr);
// The candidate whose impl_info_str() is `name`; throws dnnl::error when there is none.
ConvPd convolution_impl(const dnnl::convolution_forward::desc& d, const dnnl::primitive_attr& attr,
                        const std::string& name);
// The candidate that ran fastest (best of five rounds of 20 runs after a warm-up, within 20 ms
// of wall time: on a machine busy with other work, oneDNN's own choice stands). Another
// implementation must beat oneDNN's own choice by 10% to replace it, so that timing noise does
// not flip the choice between near-equal ones.
ConvPd fastest_convolution(const dnnl::convolution_forward::desc& d,
                           const dnnl::primitive_attr& attr, const ExtraArgs& extra = {});

// A memory for `md`, filled with zero bytes.
dnnl::memory zeroed_memory(const dnnl::memory::desc& md);

}  // namespace minnow::dnnl_glue
