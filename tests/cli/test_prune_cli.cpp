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

#include "core/rng.h"

namespace fs = std::filesystem;

namespace minnow {
namespace {

struct CliRun {
  int code = -1;
  std::string out;  // stdout + stderr
};

CliRun run_minnow(const std::string& args) {
  const std::string cmd = std::string(MINNOW_CLI_PATH) + " " + args + " 2>&1";
  CliRun r;
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

void be32(std::ofstream& f, uint32_t v) {
  const unsigned char b[4] = {static_cast<unsigned char>(v >> 24),
                              static_cast<unsigned char>(v >> 16),
                              static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
  f.write(reinterpret_cast<const char*>(b), 4);
}

// MNIST-format 10x10 images in 4 classes: class k has a bright column at 2k+1, plus noise.
void write_idx(const fs::path& dir) {
  fs::create_directories(dir);
  Rng rng(7);
  for (auto [prefix, n] : {std::pair{"train", 320}, std::pair{"t10k", 80}}) {
    std::ofstream img(dir / (std::string(prefix) + "-images-idx3-ubyte"), std::ios::binary);
    std::ofstream lab(dir / (std::string(prefix) + "-labels-idx1-ubyte"), std::ios::binary);
    be32(img, 0x00000803);
    be32(img, static_cast<uint32_t>(n));
    be32(img, 10);
    be32(img, 10);
    be32(lab, 0x00000801);
    be32(lab, static_cast<uint32_t>(n));
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
  static void expect_user_error(const std::string& args, const std::string& needle) {
    const CliRun r = run_minnow(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << "expected '" << needle << "' in " << r.out;
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
