// A LeNet-5 quantized by PyTorch (eager-mode post-training quantization, qnnpack engine) and
// exported as a QDQ ONNX file (tests/golden/gen_torch_qdq.py, committed with its outputs):
// minnow imports it, lowers it onto integer kernels and must agree with PyTorch's quantized
// model on >= 99.5% of the 10,000 Fashion-MNIST test predictions (issue 6). Exact agreement is
// not expected: PyTorch's export truncates the int32 biases (Cast of bias / scale) while its
// qnnpack kernels round them, and requantization rounds differently near ties.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "data/idx.h"
#include "data/sources.h"
#include "io/npy.h"
#include "minnow/error.h"
#include "onnx/onnx_import.h"
#include "onnx/qdq_test_util.h"
#include "runtime/inference_session.h"

namespace minnow {
namespace {

namespace fs = std::filesystem;
using qdq_test::argmax_row;
using qdq_test::lowered_op_counts;

const fs::path kGolden = fs::path(MINNOW_SOURCE_DIR) / "tests/golden";
const fs::path kTestImages = fs::path(data::kFashionMnistDir) / "t10k-images-idx3-ubyte.gz";

nlohmann::json read_meta() {
  std::ifstream f(kGolden / "torch_qdq_lenet5.json");
  if (!f) throw Error("cannot open tests/golden/torch_qdq_lenet5.json");
  return nlohmann::json::parse(f);
}

// The test images normalized as gen_torch_qdq.py did: (float(pixel) / 255 - mean) / std in f32.
Tensor normalized_test_images(float mean, float std_dev) {
  const Tensor raw = data::read_idx(kTestImages.string());
  if (raw.dtype() != DType::kU8 || raw.rank() != 3) throw Error("unexpected test image file");
  Tensor x(DType::kF32, {raw.dim(0), 1, raw.dim(1), raw.dim(2)});
  const uint8_t* src = raw.data<uint8_t>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    x.f32()[i] = (static_cast<float>(src[i]) / 255.0f - mean) / std_dev;
  }
  return x;
}

class TorchQdqGolden : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kTestImages)) GTEST_SKIP() << kTestImages << " missing (dataset-fashion-mnist)";
    meta_ = read_meta();
    graph_ = onnx::import_onnx_file((kGolden / meta_["onnx"].get<std::string>()).string());
  }
  nlohmann::json meta_;
  Graph graph_;
};

TEST_F(TorchQdqGolden, LowersToIntegerOps) {
  const std::map<std::string, int> counts = lowered_op_counts(graph_);
  for (const auto& [op, k] : counts) std::printf("  %-22s %d\n", op.c_str(), k);
  auto count = [&](const char* op) { return qdq_test::count_of(counts, op); };
  EXPECT_EQ(count("QLinearConv"), 2) << "both convolutions run on integer kernels";
  EXPECT_EQ(count("QLinearLinear"), 3) << "all three Linear layers run on integer kernels";
  EXPECT_EQ(count("Conv2d"), 0);
  EXPECT_EQ(count("Linear") + count("MatMul"), 0);
  // torch exports the Linear layers' ReLUs as DequantizeLinear -> Relu -> QuantizeLinear:
  // lower_qdq fuses them into the integer ops, so only the input's QuantizeLinear and the
  // output's DequantizeLinear remain in float.
  EXPECT_EQ(count("Relu"), 0);
  EXPECT_EQ(count("QuantizeLinear"), 1);
  EXPECT_EQ(count("DequantizeLinear"), 1);
}

TEST_F(TorchQdqGolden, AgreesWithPyTorchQuantizedPredictions) {
  const nlohmann::json& norm = meta_["normalization"];
  const Tensor x = normalized_test_images(norm["mean"].get<float>(), norm["std"].get<float>());
  const Tensor want = io::read_npy((kGolden / meta_["predictions"].get<std::string>()).string());
  ASSERT_EQ(want.dtype(), DType::kU8);
  ASSERT_EQ(want.numel(), x.dim(0));
  const Tensor labels =
      data::read_idx((fs::path(data::kFashionMnistDir) / "t10k-labels-idx1-ubyte.gz").string());

  InferenceSession session(graph_);
  const std::string in = session.inputs()[0].name;
  const int64_t n = x.dim(0), batch = 500, sample = x.numel() / n;
  int64_t agree = 0, correct = 0;
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t b = std::min(batch, n - start);
    Tensor xb(DType::kF32, {b, 1, x.dim(2), x.dim(3)});
    std::copy(x.f32() + start * sample, x.f32() + (start + b) * sample, xb.f32());
    const Tensor& y = session.run({{in, xb}})[0];
    ASSERT_EQ(y.shape(), (Shape{b, 10}));
    for (int64_t i = 0; i < b; ++i) {
      const int64_t p = argmax_row(y, i);
      agree += p == want.data<uint8_t>()[start + i];
      correct += p == labels.data<uint8_t>()[start + i];
    }
  }
  const double agreement = double(agree) / double(n);
  std::printf(
      "minnow vs PyTorch quantized (qnnpack): %lld / %lld agree (%.2f%%); minnow test "
      "accuracy %.4f, PyTorch's %.4f\n",
      static_cast<long long>(agree), static_cast<long long>(n), 100.0 * agreement,
      double(correct) / double(n), meta_["quantized_test_accuracy"].get<double>());
  EXPECT_GE(agreement, 0.995);
}

}  // namespace
}  // namespace minnow
