// End-to-end tests of `minnow quantize` and `minnow qat` on a tiny IDX dataset written by the
// test: the before/after report with every layer's precision, a saved int8 model that `eval`
// and `inspect` read, weight-only int4, and one-line user errors.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_test_util.h"

namespace fs = std::filesystem;

namespace minnow {
namespace {

using Result = cli_test::CliResult;
Result minnow(const std::string& args) { return cli_test::run_cli(args); }

class QuantizeCli : public cli_test::ScratchSuite<QuantizeCli> {
 protected:
  static void SetUpTestSuite() {
    make_dir("q");
    cli_test::write_row_dataset(dir_ / "data", 400, 100, 5);
    Result t = minnow("train --model lenet5 --epochs 2 --threads 1 --data " + data() + " --out " +
                      path("base.mnw"));
    ASSERT_EQ(t.code, 0) << t.out;
  }
};

TEST_F(QuantizeCli, Int8ReportAndModel) {
  Result r = minnow("quantize " + path("base.mnw") + " --data " + data() +
                    " --calib-samples 200 --calibration percentile --no-speed-check --threads 1 "
                    "--latency-iters 5 --out " +
                    path("q.mnw") + " --report-json " + path("q.json"));
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json j = report("q.json");
  for (const char* side : {"before", "after"}) {
    for (const char* key : {"params", "file_bytes", "test_acc", "latency_ms_p50"}) {
      EXPECT_TRUE(j[side].contains(key)) << side << "." << key;
    }
  }
  EXPECT_EQ(j["int8_layers"].size(), 5u);  // 2 conv + 3 linear
  EXPECT_EQ(j["fp32_layers"].size(), 0u);
  EXPECT_EQ(j["calibration"]["samples"], 200);
  EXPECT_LT(j["after"]["file_bytes"].get<double>(), 0.4 * j["before"]["file_bytes"].get<double>());
  EXPECT_GT(j["after"]["test_acc"].get<double>(), j["before"]["test_acc"].get<double>() - 0.05);
  Result e = minnow("eval " + path("q.mnw") + " --data " + data() + " --threads 1");
  EXPECT_EQ(e.code, 0) << e.out;
  Result i = minnow("inspect " + path("q.mnw"));
  EXPECT_EQ(i.code, 0) << i.out;
  EXPECT_NE(i.out.find("bytes"), std::string::npos);
}

TEST_F(QuantizeCli, KeepFloatAndWeightOnly) {
  Result r = minnow("quantize " + path("base.mnw") + " --data " + data() +
                    " --calib-samples 100 --keep-float conv1 --no-speed-check --threads 1 "
                    "--latency-iters 5 --out " +
                    path("k.mnw") + " --report-json " + path("k.json"));
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json k = report("k.json");
  ASSERT_EQ(k["fp32_layers"].size(), 1u);
  EXPECT_EQ(k["fp32_layers"][0]["node"], "conv1");
  r = minnow("quantize " + path("base.mnw") + " --data " + data() +
             " --weight-only int4 --threads 1 --latency-iters 5 --out " + path("w4.mnw") +
             " --report-json " + path("w4.json"));
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json w = report("w4.json");
  EXPECT_LT(w["after"]["file_bytes"].get<double>(), 0.3 * w["before"]["file_bytes"].get<double>());
}

TEST_F(QuantizeCli, QatWritesAnInt8Model) {
  Result r = minnow("qat " + path("base.mnw") + " --data " + data() +
                    " --epochs 1 --lr 1e-4 --calib-samples 100 --threads 1 --latency-iters 5 "
                    "--out " +
                    path("qat.mnw") + " --report-json " + path("qat.json"));
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json j = report("qat.json");
  EXPECT_EQ(j["int8_layers"].size(), 5u);
  EXPECT_TRUE(j["after"].contains("trainable_params"));
}

TEST_F(QuantizeCli, BadRequestsAreOneLineErrors) {
  const std::string base =
      "quantize " + path("base.mnw") + " --data " + data() + " --out " + path("bad.mnw") + " ";
  cli_test::expect_user_error(base + "--calibration kl", "kl");
  cli_test::expect_user_error(base + "--weight-only int3", "--weight-only");
  cli_test::expect_user_error(base + "--calib-samples 0", "--calib-samples");
  cli_test::expect_user_error(base + "--keep-float nosuchnode", "nosuchnode");
  cli_test::expect_user_error(base + "--percentile 20", "--percentile");
  cli_test::expect_user_error(
      "quantize " + path("missing.mnw") + " --data " + data() + " --out " + path("bad.mnw"),
      "missing.mnw");
  EXPECT_FALSE(fs::exists(path("bad.mnw")));
}

}  // namespace
}  // namespace minnow
