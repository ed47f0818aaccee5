// End-to-end tests of `minnow prune` on a small IDX dataset written by the test: the report's
// per-layer sparsity, masks held when a pruned file is fine-tuned again, gradual pruning with
// a sensitivity budget, and one-line user errors.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "core/rng.h"

namespace fs = std::filesystem;

namespace minnow {
namespace {

using CliRun = cli_test::CliResult;
inline CliRun run_minnow(const std::string& args) { return cli_test::run_cli(args); }
using cli_test::expect_user_error;

// MNIST-format 10x10 images in 4 classes: class k has a bright column at 2k+1, plus noise.
void write_idx(const fs::path& dir) {
  fs::create_directories(dir);
  Rng rng(7);
  for (auto [prefix, n] : {std::pair{"train", 320}, std::pair{"t10k", 80}}) {
    std::ofstream img(dir / (std::string(prefix) + "-images-idx3-ubyte"), std::ios::binary);
    std::ofstream lab(dir / (std::string(prefix) + "-labels-idx1-ubyte"), std::ios::binary);
    cli_test::write_idx_headers(img, lab, static_cast<uint32_t>(n), 10, 10);
    for (int i = 0; i < n; ++i) {
      const int cls = static_cast<int>(rng.below(4));
      for (int r = 0; r < 10; ++r) {
        for (int c = 0; c < 10; ++c) {
          const int v = static_cast<int>(60 * rng.uniform()) + (c == 2 * cls + 1 ? 190 : 0);
          img.put(static_cast<char>(v));
        }
      }
      lab.put(static_cast<char>(cls));
    }
  }
}

class PruneCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("minnow_prune_cli_" + std::to_string(::getpid()));
    write_idx(dir_ / "data");
    const CliRun r =
        run_minnow("train --model lenet300 --data " + data() +
                   " --epochs 2 --threads 1 --no-checkpoint --out " + path("dense.mnw"));
    ASSERT_EQ(r.code, 0) << r.out;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string data() { return (dir_ / "data").string(); }
  static std::string path(const std::string& name) { return (dir_ / name).string(); }
  static nlohmann::json read_json(const std::string& name) {
    std::ifstream in(path(name));
    return nlohmann::json::parse(in);
  }
  static std::string prune_args(const std::string& model, const std::string& out) {
    return "prune " + path(model) + " --data " + data() + " --threads 1 --latency-iters 3 --out " +
           path(out + ".mnw") + " --report-json " + path(out + ".json");
  }
  static fs::path dir_;
};
fs::path PruneCli::dir_;

TEST_F(PruneCli, MagnitudeReportAndMasksHeldWhenFineTunedAgain) {
  CliRun r = run_minnow(prune_args("dense.mnw", "mag") +
                        " --method magnitude --sparsity 0.8 --per-layer logits=0.5 --epochs 1");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("per-layer sparsity"), std::string::npos);
  nlohmann::json j = read_json("mag.json");
  ASSERT_EQ(j["layers"].size(), 3u);
  EXPECT_EQ(j["layers"][0]["name"], "fc1");
  EXPECT_NEAR(j["layers"][0]["sparsity"].get<double>(), 0.8, 1e-3);
  EXPECT_NEAR(j["layers"][2]["sparsity"].get<double>(), 0.5, 1e-3);
  EXPECT_LT(j["after"]["nonzero_params"].get<int64_t>(),
            j["before"]["nonzero_params"].get<int64_t>() / 4);
  EXPECT_TRUE(j["after"].contains("trainable_params"));
  EXPECT_GT(j["after"]["test_acc"].get<double>(), 0.3);

  // Fine-tune the pruned file again without pruning more: its zeros are its masks.
  r = run_minnow(prune_args("mag.mnw", "again") + " --method magnitude --sparsity 0 --epochs 2");
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json k = read_json("again.json");
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(k["layers"][i]["nonzero"], j["layers"][i]["nonzero"]) << i;
  }
}

TEST_F(PruneCli, GradualWithSensitivityBudgetAndGlobal) {
  CliRun r = run_minnow(prune_args("dense.mnw", "grad") +
                        " --method gradual --sensitivity-budget 100 --sensitivity-samples 40"
                        " --sensitivity-sparsities 0.5,0.9 --epochs 2 --end-epoch 1 --frequency 2"
                        " --exclude logits");
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json j = read_json("grad.json");
  // A budget of 100 points accepts every tested sparsity: 0.9 for both non-excluded layers.
  EXPECT_EQ(j["sensitivity"]["layers"].size(), 2u);
  EXPECT_EQ(j["sensitivity"]["samples"], 40);
  ASSERT_EQ(j["layers"].size(), 2u);
  EXPECT_NEAR(j["layers"][0]["sparsity"].get<double>(), 0.9, 1e-3);
  EXPECT_NEAR(j["layers"][1]["sparsity"].get<double>(), 0.9, 1e-3);
  EXPECT_EQ(j["schedule"]["end_step"], 5);        // 320 samples, batch 64: 5 steps per epoch
  EXPECT_EQ(j["schedule"]["events"].size(), 4u);  // steps 0, 2, 4, 5

  r = run_minnow(prune_args("dense.mnw", "global") + " --method global --sparsity 0.9");
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json g = read_json("global.json");
  EXPECT_NEAR(g["overall_sparsity"].get<double>(), 0.9, 1e-3);
  EXPECT_FALSE(g["after"].contains("trainable_params"));  // no fine-tuning
}

TEST_F(PruneCli, UserErrors) {
  const std::string base = prune_args("dense.mnw", "bad");
  expect_user_error(base + " --method random --sparsity 0.5", "--method");
  expect_user_error(base + " --method magnitude --sparsity 1.5", "--sparsity");
  expect_user_error(base + " --method magnitude", "--sparsity");
  expect_user_error(base + " --method gradual --sparsity 0.5", "--epochs");
  expect_user_error(base + " --method gradual --sparsity 0.5 --epochs 1 --end-step 50",
                    "--end-step");
  expect_user_error(base + " --method magnitude --sparsity 0.5 --exclude conv9", "conv9");
  expect_user_error(base + " --method magnitude --per-layer fc1", "name=ratio");
  expect_user_error(base + " --method magnitude --per-layer fc9=0.5", "fc9");
  EXPECT_FALSE(fs::exists(path("bad.mnw")));
}

}  // namespace
}  // namespace minnow
