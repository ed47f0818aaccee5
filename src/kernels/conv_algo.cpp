#include "kernels/conv_algo.h"

#include <array>

#include "kernels/conv_depthwise.h"
#include "kernels/conv_depthwise3x3.h"
#include "kernels/conv_depthwise_plane.h"
#include "kernels/conv_dnnl.h"
#include "kernels/conv_gemm.h"

namespace minnow::kernels {
namespace {

// Each pass runs on the strategy measured fastest for it; strategies are built once and shared
// between the passes that use them.
class ConvPlan : public ConvAlgo {
 public:
  ConvPlan(const ConvGeometry& g, ConvStrategy fwd, ConvStrategy bwd_data,
           ConvStrategy bwd_weights) {
    fwd_ = get(g, fwd);
    bwd_data_ = get(g, bwd_data);
    bwd_weights_ = get(g, bwd_weights);
  }

  void forward(const float* x, const float* w, const float* b, float* y, bool training) override {
    // Only the strategy that also computes the weight gradient profits from keeping state.
    fwd_->forward(x, w, b, y, training && fwd_ == bwd_weights_);
  }
  void backward_data(const float* dy, const float* w, float* dx) override {
    bwd_data_->backward_data(dy, w, dx);
  }
  void backward_weights(const float* x, const float* dy, float* dw, float* db) override {
    bwd_weights_->backward_weights(x, dy, dw, db);
  }
  void backward(const float* x, const float* dy, const float* w, float* dx, float* dw,
                float* db) override {
    if (bwd_data_ == bwd_weights_) return bwd_data_->backward(x, dy, w, dx, dw, db);
    ConvAlgo::backward(x, dy, w, dx, dw, db);
  }
  std::string name() const override {
    return fwd_->name() + " | " + bwd_data_->name() + " | " + bwd_weights_->name();
  }

 private:
  ConvAlgo* get(const ConvGeometry& g, ConvStrategy s) {
    auto& slot = owned_[static_cast<int>(s)];
    if (!slot) slot = make_conv_strategy(g, s);
    return slot.get();
  }

  std::array<std::unique_ptr<ConvAlgo>, 6> owned_;
  ConvAlgo* fwd_;
  ConvAlgo* bwd_data_;
  ConvAlgo* bwd_weights_;
};

}  // namespace

std::unique_ptr<ConvAlgo> make_conv_strategy(const ConvGeometry& g, ConvStrategy s) {
  switch (s) {
    case ConvStrategy::kGemm:
      return std::make_unique<ConvGemm>(g);
    case ConvStrategy::kDnnlPlain:
      return std::make_unique<ConvDnnl>(g, ConvDnnl::Layout::kPlain);
    case ConvStrategy::kDepthwise:
      return std::make_unique<ConvDepthwise>(g);
    case ConvStrategy::kDepthwise3x3:
      return std::make_unique<ConvDepthwise3x3>(g);
    case ConvStrategy::kDepthwisePlane:
      return std::make_unique<ConvDepthwisePlane>(g);
    case ConvStrategy::kDnnlAny:
      break;
  }
  return std::make_unique<ConvDnnl>(g, ConvDnnl::Layout::kAny);
}

std::unique_ptr<ConvAlgo> make_conv_plan(const ConvGeometry& g, ConvStrategy fwd,
                                         ConvStrategy bwd_data, ConvStrategy bwd_weights) {
  return std::make_unique<ConvPlan>(g, fwd, bwd_data, bwd_weights);
}

std::unique_ptr<ConvAlgo> choose_conv_algo(const ConvGeometry& g) {
  using S = ConvStrategy;
  // Depthwise: 3x3 "same" convolutions on planes of up to 256 pixels run the flat-plane kernel
  // (in a MobileNetV2 training step, medians per call at batch 64: 7x7 x 192 forward 0.28 ->
  // 0.11 ms and backward 0.49 -> 0.33 against oneDNN's jit_dw with reorders; 14x14 x 144
  // forward 0.60 -> 0.33 and backward 1.12 -> 0.79 against the phased loops and row kernels;
  // with warm caches, as bench_kernels measures, oneDNN is close on 7x7). Stride 2 runs the
  // AVX-512 row kernels where the CPU has them (MobileNetV2's 28x28 -> 14x14 layer, 64 x 96
  // planes: forward 0.47 ms against oneDNN's 0.82 with reorders, both backward passes 2.0 ms
  // against 2.3); the phased plane loops win on larger stride-1 planes; oneDNN's blocked-layout
  // jit_dw, reorders included, on stride 2 without AVX-512; see bench_kernels.
  if (ConvDepthwisePlane::supports(g)) {
    return make_conv_plan(g, S::kDepthwisePlane, S::kDepthwisePlane, S::kDepthwisePlane);
  }
  if (g.sh == 2 && ConvDepthwise3x3::supports(g)) {
    return make_conv_plan(g, S::kDepthwise3x3, S::kDepthwise3x3, S::kDepthwise3x3);
  }
  if (g.is_depthwise() && g.sh == 1 && g.sw == 1 && g.oh() * g.ow() >= 14 * 14) {
    // Backward on the AVX-512 row kernels where they apply (64 x 144 planes of 14x14, cold
    // caches: both passes 1.12 ms against 1.31); forward stays on the phased loops (0.44 ms
    // against 0.82).
    const S back = ConvDepthwise3x3::supports(g) ? S::kDepthwise3x3 : S::kDepthwise;
    return make_conv_plan(g, S::kDepthwise, back, back);
  }
  if (g.cg() == 1 && g.group > 1) return make_conv_plan(g, S::kDnnlAny, S::kDnnlAny, S::kDnnlAny);
  return make_conv_plan(g, S::kGemm, S::kGemm, S::kGemm);
}

}  // namespace minnow::kernels
