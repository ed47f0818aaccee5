// Round trip of a minnow int8 model through ONNX (issue 6): a LeNet-5 trained briefly on a
// Fashion-MNIST subset is quantized by `minnow quantize` (QDQ .mnw: int8 per-channel weights,
// int32 biases, u8 activations), written by `minnow export` as a QDQ ONNX file and run by ONNX
// Runtime (tests/onnx/ort_run.js), and as a QOperator file (`--qoperator`: QLinearConv /
// QLinearMatMul) likewise. minnow's integer kernels and ONNX Runtime's must agree on
// >= 99.5% of the top-1 predictions (ONNX Runtime fuses the same QDQ patterns onto its own int8
// kernels, whose rounding may differ by a step). bench/qdq_roundtrip.sh measures the same on the
// whole test set.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <string>

#include "data/idx.h"
#include "data/sources.h"
#include "io/mnw.h"
#include "io/npy.h"
#include "minnow/error.h"
#include "onnx/onnx_import.h"
#include "onnx/qdq_test_util.h"
#include "runtime/inference_session.h"

namespace minnow {
namespace {

namespace fs = std::filesystem;
using qdq_test::argmax_row;
using qdq_test::count_of;

constexpr int64_t kTrainSamples = 3000;
constexpr int64_t kTestSamples = 400;

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

// Runs a shell command; on failure returns its exit status and output.
std::string run(const std::string& cmd, const fs::path& log) {
  const int rc = std::system((cmd + " >" + quoted(log) + " 2>&1").c_str());
  if (rc == 0) return "";
  std::ifstream f(log);
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return "'" + cmd + "' failed (status " + std::to_string(rc) + "):\n" + text;
}

// The first `n` samples of a Fashion-MNIST IDX file, written uncompressed to `dst`.
void write_prefix(const std::string& name, int64_t n, const fs::path& dst) {
  const Tensor t = data::read_idx((fs::path(data::kFashionMnistDir) / (name + ".gz")).string());
  Shape s = t.shape();
  s[0] = std::min(n, s[0]);
  Tensor part(t.dtype(), s);
  std::copy(t.data<uint8_t>(), t.data<uint8_t>() + part.numel(), part.data<uint8_t>());
  data::write_idx((dst / name).string(), part);
}

// A model, how long to train it on the subset and how to quantize it.
struct Case {
  std::string label, model;
  int epochs;
  std::string quantize_flags;
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.label; }

class QdqRoundTrip : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (!fs::exists(fs::path(data::kFashionMnistDir) / "t10k-images-idx3-ubyte.gz")) {
      GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    }
    dir_ = fs::temp_directory_path() / ("minnow_qdq_roundtrip_" + std::to_string(getpid()));
    fs::create_directories(dir_ / "data");
    write_prefix("train-images-idx3-ubyte", kTrainSamples, dir_ / "data");
    write_prefix("train-labels-idx1-ubyte", kTrainSamples, dir_ / "data");
    write_prefix("t10k-images-idx3-ubyte", kTestSamples, dir_ / "data");
    write_prefix("t10k-labels-idx1-ubyte", kTestSamples, dir_ / "data");
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

TEST_P(QdqRoundTrip, MinnowInt8AgreesWithOnnxRuntime) {
  const Case& c = GetParam();
  const std::string cli = quoted(MINNOW_CLI_PATH), data = quoted(dir_ / "data");
  const fs::path log = dir_ / "log.txt";
  std::string err = run(cli + " train --model " + c.model + " --data " + data + " --epochs " +
                            std::to_string(c.epochs) + " --threads 1 --no-checkpoint --out " +
                            quoted(dir_ / "f32.mnw"),
                        log);
  ASSERT_EQ(err, "");
  err = run(cli + " quantize " + quoted(dir_ / "f32.mnw") + " --data " + data +
                " --threads 1 --calib-samples 500 --no-speed-check " + c.quantize_flags +
                " --out " + quoted(dir_ / "int8.mnw"),
            log);
  ASSERT_EQ(err, "");
  err = run(cli + " export " + quoted(dir_ / "int8.mnw") + " " + quoted(dir_ / "int8.onnx"), log);
  ASSERT_EQ(err, "");

  const io::MnwContents m = io::load_mnw((dir_ / "int8.mnw").string());
  // The file ONNX Runtime runs is a QDQ graph, and minnow runs it (and its own .mnw) with every
  // Conv2d / Linear / Add on integer kernels.
  const Graph exported = onnx::import_onnx_file((dir_ / "int8.onnx").string());
  for (const Graph* g : {&m.graph, &exported}) {
    const std::map<std::string, int> counts = qdq_test::lowered_op_counts(*g);
    EXPECT_GT(count_of(counts, "QLinearConv"), 0) << g->name;
    EXPECT_GT(count_of(counts, "QLinearLinear"), 0) << g->name;
    EXPECT_EQ(count_of(counts, "Conv2d") + count_of(counts, "Linear") + count_of(counts, "Add"), 0)
        << g->name << ": float layers left";
  }

  // The test images with the model's stored normalization; the same tensor goes to both.
  const data::TrainTest d = data::load_dataset((dir_ / "data").string());
  Tensor x = d.test.x;
  ASSERT_EQ(x.dim(0), kTestSamples);
  ASSERT_TRUE(m.metadata.contains("normalization"));
  const float mean = m.metadata["normalization"]["mean"][0].get<float>();
  const float std_dev = m.metadata["normalization"]["std"][0].get<float>();
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = (x.f32()[i] - mean) / std_dev;

  InferenceSession session(m.graph);
  const std::string in = session.inputs()[0].name, out = session.outputs()[0].name;
  const Tensor mine = session.run({{in, x}})[0];

  const fs::path x_npy = dir_ / "x.npy";
  io::write_npy(x_npy.string(), x);
  const Tensor& labels = d.test.y;
  int64_t correct = 0;
  for (int64_t i = 0; i < kTestSamples; ++i) {
    correct += argmax_row(mine, i) == labels.data<int64_t>()[i];
  }
  // A trained model, not chance: agreement on near-uniform logits would prove little.
  EXPECT_GE(double(correct) / double(kTestSamples), 0.6);

  // The QDQ file, and the QOperator form of the same model (QLinearConv / QLinearMatMul).
  err = run(cli + " export " + quoted(dir_ / "int8.mnw") + " " + quoted(dir_ / "qop.onnx") +
                " --qoperator",
            log);
  ASSERT_EQ(err, "");
  for (const char* file : {"int8.onnx", "qop.onnx"}) {
    SCOPED_TRACE(file);
    const fs::path ort_dir = dir_ / (std::string(file) + ".ort");
    err = run("node " + quoted(fs::path(MINNOW_SOURCE_DIR) / "tests/onnx/ort_run.js") + " " +
                  quoted(dir_ / file) + " " + quoted(ort_dir) + " " + quoted(x_npy),
              log);
    ASSERT_EQ(err, "");
    const Tensor theirs = io::read_npy((ort_dir / (out + ".npy")).string());
    ASSERT_EQ(theirs.shape(), mine.shape());
    double worst = 0;
    for (int64_t i = 0; i < mine.numel(); ++i) {
      worst = std::max(worst, std::abs(double(mine.f32()[i]) - double(theirs.f32()[i])));
    }
    int64_t agree = 0;
    for (int64_t i = 0; i < kTestSamples; ++i)
      agree += argmax_row(mine, i) == argmax_row(theirs, i);
    const double agreement = double(agree) / double(kTestSamples);
    std::printf(
        "%s: minnow int8 vs ONNX Runtime on the exported %s: %lld / %lld agree (%.2f%%), "
        "largest logit difference %.4g, minnow accuracy %.3f\n",
        c.label.c_str(), file, static_cast<long long>(agree), static_cast<long long>(kTestSamples),
        100.0 * agreement, worst, double(correct) / double(kTestSamples));
    EXPECT_GE(agreement, 0.995);
  }

  // The QOperator file holds ONNX's integer ops for every quantized convolution and matrix
  // product (layers with a float output, such as the classifier, stay QDQ), and minnow
  // importing it computes exactly what its own int8 model does.
  const Graph qop = onnx::import_onnx_file((dir_ / "qop.onnx").string());
  const std::map<std::string, int> counts = qdq_test::lowered_op_counts(qop);
  EXPECT_GT(count_of(counts, "QLinearConv"), 0);
  EXPECT_EQ(count_of(counts, "Conv2d"), 0);
  InferenceSession qop_session(qop);
  const Tensor again = qop_session.run({{qop_session.inputs()[0].name, x}})[0];
  ASSERT_EQ(again.shape(), mine.shape());
  for (int64_t i = 0; i < mine.numel(); ++i) ASSERT_EQ(again.f32()[i], mine.f32()[i]) << i;
}

// lenet5: Conv/Linear with ReLU; resnet8: folded BatchNorm, residual QLinearAdd and the
// global average pool; per-tensor weights and int8 activations take the other export paths
// (scalar weight scale, i8 zero points).
INSTANTIATE_TEST_SUITE_P(Models, QdqRoundTrip,
                         ::testing::Values(Case{"lenet5", "lenet5", 2, ""},
                                           Case{"lenet5_per_tensor_int8_act", "lenet5", 2,
                                                "--per-tensor --symmetric-activations"},
                                           Case{"resnet8", "resnet8", 1, ""}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.label;
                         });

}  // namespace
}  // namespace minnow
