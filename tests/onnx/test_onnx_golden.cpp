// ONNX files exported by PyTorch (torchvision classifiers, LSTM/GRU models) imported into minnow
// and run by InferenceSession: the outputs must match PyTorch's within 1e-4 (absolute +
// relative), at the batch the file was made with (2) and at batch 1 (dynamic batch axis).
//
// The files are not committed (resnet18 alone is 45 MB): tests/golden/gen_onnx_golden.py writes
// them into the build tree once (~10 s) and again only when the script is newer than them.
// Every TEST runs in its own process under ctest, possibly in parallel, so the generator writes
// into a private directory that is then renamed into place.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/npy.h"
#include "minnow/error.h"
#include "onnx/onnx_import.h"
#include "runtime/inference_session.h"

namespace minnow {
namespace {

namespace fs = std::filesystem;

// The models gen_onnx_golden.py writes; ManifestListsExactlyTheTestedModels keeps the two in step.
const std::vector<std::string> kModels = {"mobilenet_v2",
                                          "mobilenet_v2_bn",
                                          "mobilenet_v3_small",
                                          "squeezenet1_1",
                                          "shufflenet_v2_x0_5",
                                          "resnet18",
                                          "lstm",
                                          "gru",
                                          "lstm_bidirectional",
                                          "lstm_2layer"};

const fs::path kScript = fs::path(MINNOW_SOURCE_DIR) / "tests/golden/gen_onnx_golden.py";
// The build tree: where the CLI binary is.
const fs::path kGoldenDir = fs::path(MINNOW_CLI_PATH).parent_path() / "onnx_golden";

bool golden_files_current() {
  const fs::path manifest = kGoldenDir / "manifest.json";
  std::error_code ec;
  if (!fs::exists(manifest, ec)) return false;
  return fs::last_write_time(manifest, ec) >= fs::last_write_time(kScript, ec) && !ec;
}

// Returns an empty string on success, else what went wrong.
std::string generate_golden_files() {
  if (golden_files_current()) return "";
  const fs::path tmp = kGoldenDir.string() + ".tmp" + std::to_string(getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  const std::string log = tmp.string() + ".log";
  const std::string cmd =
      "/usr/bin/python3 '" + kScript.string() + "' '" + tmp.string() + "' > '" + log + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::ifstream f(log);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return "'" + cmd + "' failed (status " + std::to_string(rc) + "):\n" + text;
  }
  fs::remove(log, ec);
  if (golden_files_current()) {  // another test process finished first
    fs::remove_all(tmp, ec);
    return "";
  }
  fs::remove_all(kGoldenDir, ec);  // stale files from an older script
  fs::rename(tmp, kGoldenDir, ec);
  if (ec && !golden_files_current()) {
    return "cannot move " + tmp.string() + " to " + kGoldenDir.string() + ": " + ec.message();
  }
  fs::remove_all(tmp, ec);
  return "";
}

class OnnxGolden : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    generation_error_ = generate_golden_files();
    if (!generation_error_.empty()) return;
    std::ifstream f(kGoldenDir / "manifest.json");
    try {
      manifest_ = nlohmann::json::parse(f);
    } catch (const std::exception& e) {
      generation_error_ = std::string("manifest.json: ") + e.what();
    }
  }

  void SetUp() override { ASSERT_TRUE(generation_error_.empty()) << generation_error_; }

  static const nlohmann::json* entry(const std::string& name) {
    for (const nlohmann::json& m : manifest_["models"]) {
      if (m["name"] == name) return &m;
    }
    return nullptr;
  }

  static inline std::string generation_error_;
  static inline nlohmann::json manifest_;
};

// Counts values outside |got - want| <= 1e-4 (1 + |want|), reports the first few, and returns
// the largest error as a fraction of its tolerance.
double expect_close(const Tensor& got, const float* want, int64_t n, const std::string& what) {
  EXPECT_EQ(got.numel(), n) << what;
  if (got.numel() != n) return INFINITY;
  int bad = 0;
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double err = std::abs(double(got.f32()[i]) - double(want[i]));
    const double tol = 1e-4 * (1.0 + std::abs(double(want[i])));
    worst = std::max(worst, err / tol);
    if (!(err <= tol) && bad++ < 5) {
      ADD_FAILURE() << what << "[" << i << "]: minnow " << got.f32()[i] << " vs PyTorch "
                    << want[i];
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << n << " values differ";
  return worst;
}

// The first sample of a batch, as a batch of one.
Tensor first_sample(const Tensor& t) {
  Shape s = t.shape();
  s[0] = 1;
  Tensor one(t.dtype(), s);
  std::copy(t.f32(), t.f32() + one.numel(), one.f32());
  return one;
}

TEST_P(OnnxGolden, MatchesPyTorch) {
  const std::string name = GetParam();
  const nlohmann::json* m = entry(name);
  ASSERT_NE(m, nullptr) << "manifest.json has no model '" << name << "'";
  const fs::path dir = kGoldenDir;
  const Tensor x = io::read_npy((dir / (*m)["input"].get<std::string>()).string());
  const Tensor want = io::read_npy((dir / (*m)["output"].get<std::string>()).string());
  ASSERT_EQ(x.dtype(), DType::kF32);
  ASSERT_EQ(want.dtype(), DType::kF32);

  const std::string path = (dir / (*m)["onnx"].get<std::string>()).string();
  Graph g;
  try {
    g = onnx::import_onnx_file(path);
  } catch (const Error& e) {
    FAIL() << "import_onnx_file(" << path << ") failed: " << e.what();
  }
  ASSERT_EQ(g.inputs.size(), 1u) << name;
  ASSERT_EQ(g.outputs.size(), 1u) << name;
  EXPECT_EQ(g.inputs[0].name, (*m)["input_name"].get<std::string>());
  EXPECT_EQ(g.outputs[0].name, (*m)["output_name"].get<std::string>());
  EXPECT_EQ(g.inputs[0].shape.at(0), kDynamic) << "the file's batch axis is symbolic ('N')";

  // What users run (rewritten graph, fast kernels, memory plan), then the graph exactly as
  // imported on reference kernels: a failure in one only points at the inference rewrites or
  // fast kernels, in both at the importer.
  struct Mode {
    const char* label;
    KernelChoice kernels;
    bool optimize;
  };
  for (const Mode mode : {Mode{"optimized", KernelChoice::kFast, true},
                          Mode{"reference", KernelChoice::kReference, false}}) {
    SCOPED_TRACE(mode.label);
    InferenceSession session(g, mode.kernels, mode.optimize);
    const std::string in = session.inputs()[0].name;
    try {
      const Tensor& y = session.run({{in, x}})[0];
      ASSERT_EQ(y.shape(), want.shape());
      const double w = expect_close(y, want.f32(), want.numel(), name + " " + mode.label);
      std::printf("%s %s batch %lld: worst error %.3g of tolerance\n", name.c_str(), mode.label,
                  static_cast<long long>(x.dim(0)), w);
      // Batch 1 in the same session: a second plan, and every batch-dependent shape
      // computation (LSTM initial states, reshapes) evaluated for another batch.
      const Tensor& y1 = session.run({{in, first_sample(x)}})[0];
      Shape s1 = want.shape();
      s1[0] = 1;
      ASSERT_EQ(y1.shape(), s1);
      expect_close(y1, want.f32(), want.numel() / want.dim(0), name + " batch 1 " + mode.label);
    } catch (const Error& e) {
      FAIL() << name << " (" << mode.label << "): " << e.what();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, OnnxGolden, ::testing::ValuesIn(kModels),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST_F(OnnxGolden, ManifestListsExactlyTheTestedModels) {
  std::vector<std::string> listed;
  for (const nlohmann::json& m : manifest_["models"]) listed.push_back(m["name"]);
  EXPECT_EQ(listed, kModels) << "gen_onnx_golden.py and kModels disagree";
  EXPECT_EQ(manifest_["opset"], 13);
}

}  // namespace
}  // namespace minnow
