// End-to-end tests of the minnow binary: exit codes, one-line errors, no partial files, and a
// small train → eval → inspect → run round trip on an IDX dataset written by the test.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli_test_util.h"
#include "core/rng.h"
#include "io/npy.h"

namespace fs = std::filesystem;

namespace minnow {
namespace {

using cli_test::expect_user_error;
using Result = cli_test::CliResult;
inline Result minnow(const std::string& args) { return cli_test::run_cli(args); }

// Writes an MNIST-format dataset of 12x12 images: class k has a bright row at 2k+1.
void write_dataset(const fs::path& dir, int n_train, int n_test) {
  fs::create_directories(dir);
  Rng rng(1);
  for (auto [prefix, n] : {std::pair{"train", n_train}, std::pair{"t10k", n_test}}) {
    std::ofstream img(dir / (std::string(prefix) + "-images-idx3-ubyte"), std::ios::binary);
    std::ofstream lab(dir / (std::string(prefix) + "-labels-idx1-ubyte"), std::ios::binary);
    cli_test::write_idx_headers(img, lab, static_cast<uint32_t>(n), 12, 12);
    for (int i = 0; i < n; ++i) {
      unsigned char label = static_cast<unsigned char>(rng.below(4));
      for (int p = 0; p < 144; ++p) {
        int v = static_cast<int>(rng.below(60)) + ((p / 12) == 2 * label + 1 ? 180 : 0);
        img.put(static_cast<char>(std::min(v, 255)));
      }
      lab.put(static_cast<char>(label));
    }
  }
}

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("minnow_cli_" + std::to_string(getpid()));
    write_dataset(dir_ / "data", 400, 100);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string path(const std::string& name) { return (dir_ / name).string(); }
  static std::string data() { return path("data"); }
  static fs::path dir_;
};
fs::path Cli::dir_;

TEST_F(Cli, HelpForEverySubcommand) {
  for (const char* sub : {"", "train", "eval", "inspect", "run", "zoo", "bench"}) {
    Result r = minnow(std::string(sub) + " --help");
    EXPECT_EQ(r.code, 0) << sub;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub;
  }
}

TEST_F(Cli, BadFlagsAreOneLineUserErrorsAndWriteNoFile) {
  std::string out = path("never.mnw");
  std::string base = "train --data " + data() + " --out " + out + " ";
  expect_user_error(base + "--model resnet9000", "unknown model 'resnet9000'");
  expect_user_error(base + "--model lenet5 --epochs -1", "--epochs");
  expect_user_error(base + "--model lenet5 --batch 0", "--batch");
  expect_user_error(base + "--model lenet5 --optimizer rmsprop", "unknown optimizer 'rmsprop'");
  expect_user_error(base + "--model lenet5 --threads 0", "--threads");
  expect_user_error(base + "--model lenet5 --lr abc", "--lr");
  expect_user_error("train --model lenet5 --data " + path("nope") + " --out " + out, "nope");
  expect_user_error("frobnicate", "frobnicate");
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(Cli, TruncatedDatasetIsAnError) {
  fs::create_directories(path("trunc"));
  for (auto& e : fs::directory_iterator(data())) fs::copy(e.path(), path("trunc"));
  fs::resize_file(path("trunc/train-images-idx3-ubyte"), 5000);
  expect_user_error("train --model mlp --data " + path("trunc") + " --out " + path("t.mnw"),
                    "train-images-idx3-ubyte");
}

TEST_F(Cli, TrainEvalInspectRunRoundTrip) {
  std::string model = path("m.mnw");
  Result t = minnow("train --model mlp --hidden 32 --data " + data() +
                    " --epochs 3 --batch 16 --lr 3e-3 --out " + model + " --report-json " +
                    path("train.json"));
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_TRUE(fs::exists(model));
  EXPECT_TRUE(fs::exists(path("train.json")));
  std::ifstream report(path("train.json"));
  std::string json((std::istreambuf_iterator<char>(report)), {});
  for (const char* key : {"\"model\"", "\"params\"", "\"epochs\"", "\"steps\"", "\"batch\"",
                          "\"threads\"", "\"train_seconds\"", "\"train_img_per_s\"",
                          "\"final_train_loss\"", "\"test_loss\"", "\"test_acc\""}) {
    EXPECT_NE(json.find(key), std::string::npos) << key;
  }

  Result e = minnow("eval " + model + " --data " + data() + " --report-json " + path("eval.json"));
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_NE(e.out.find("accuracy"), std::string::npos);

  Result i = minnow("inspect " + model);
  ASSERT_EQ(i.code, 0) << i.out;
  EXPECT_NE(i.out.find("Linear"), std::string::npos);
  EXPECT_NE(i.out.find("total:"), std::string::npos);

  Tensor x(DType::kF32, {3, 1, 12, 12});
  io::write_npy(path("x.npy"), x);
  Result r = minnow("run " + model + " --input " + path("x.npy") + " --output " + path("y.npy"));
  ASSERT_EQ(r.code, 0) << r.out;
  Tensor y = io::read_npy(path("y.npy"));
  EXPECT_EQ(y.shape(), (Shape{3, 4}));

  Result b =
      minnow("bench " + model + " --batch 4 --iters 20 --warmup 2 --threads 1 --report-json " +
             path("bench.json"));
  ASSERT_EQ(b.code, 0) << b.out;
  EXPECT_NE(b.out.find("p50"), std::string::npos) << b.out;
  std::ifstream bench_report(path("bench.json"));
  std::string bench_json((std::istreambuf_iterator<char>(bench_report)), {});
  for (const char* key :
       {"\"latency_ms_p50\"", "\"latency_ms_p90\"", "\"latency_ms_p99\"", "\"samples_per_s\"",
        "\"file_bytes\"", "\"peak_rss_bytes\"", "\"batch\": 4"}) {
    EXPECT_NE(bench_json.find(key), std::string::npos) << key << " in " << bench_json;
  }
  Result prof = minnow("bench " + model + " --iters 5 --warmup 1 --threads 1 --profile");
  ASSERT_EQ(prof.code, 0) << prof.out;
  EXPECT_NE(prof.out.find("per node"), std::string::npos) << prof.out;
  EXPECT_NE(prof.out.find("Linear"), std::string::npos) << prof.out;
  expect_user_error("bench " + model + " --iters 0", "--iters");
  expect_user_error("bench " + model + " --batch -3", "--batch");
  expect_user_error("bench " + path("missing.mnw"), "missing.mnw");

  Tensor wrong(DType::kF32, {3, 1, 10, 12});
  io::write_npy(path("wrong.npy"), wrong);
  expect_user_error("run " + model + " --input " + path("wrong.npy") + " --output " + path("z.npy"),
                    "shape");
  Tensor wrong_type(DType::kF64, {3, 1, 12, 12});
  io::write_npy(path("wrong_type.npy"), wrong_type);
  expect_user_error(
      "run " + model + " --input " + path("wrong_type.npy") + " --output " + path("z.npy"), "f64");
  EXPECT_FALSE(fs::exists(path("z.npy")));
}

TEST_F(Cli, CorruptModelFilesAreOneLineErrors) {
  std::string model = path("c.mnw");
  ASSERT_EQ(minnow("train --model mlp --hidden 8 --data " + data() +
                   " --epochs 1 --no-checkpoint --out " + model)
                .code,
            0);
  std::string bytes;
  {
    std::ifstream f(model, std::ios::binary);
    bytes.assign((std::istreambuf_iterator<char>(f)), {});
  }
  auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(path(name), std::ios::binary) << content;
    return path(name);
  };
  expect_user_error("inspect " + write("trunc.mnw", bytes.substr(0, bytes.size() / 2)),
                    "trunc.mnw");
  expect_user_error("inspect " + write("garbage.mnw", std::string(1000, 'x')), "garbage.mnw");
  expect_user_error("inspect " + write("empty.mnw", ""), "empty.mnw");
  std::string versioned = bytes;
  versioned[8] = 99;  // the format version follows the 8-byte magic
  expect_user_error("eval " + write("version.mnw", versioned) + " --data " + data(), "version.mnw");
  expect_user_error("inspect " + path("missing.mnw"), "missing.mnw");
}

TEST_F(Cli, ResumedRunEndsWithTheSameModel) {
  std::string args = "train --model mlp --hidden 16 --data " + data() +
                     " --epochs 3 --batch 32 --augment-shift 1 --seed 7 ";
  ASSERT_EQ(minnow(args + "--out " + path("full.mnw")).code, 0);
  ASSERT_EQ(minnow(args + "--out " + path("part.mnw") + " --stop-after-epoch 1").code, 0);
  ASSERT_EQ(
      minnow(args + "--out " + path("resumed.mnw") + " --resume " + path("part.mnw.ckpt")).code, 0);
  std::ifstream a(path("full.mnw"), std::ios::binary), b(path("resumed.mnw"), std::ios::binary);
  std::string sa((std::istreambuf_iterator<char>(a)), {}),
      sb((std::istreambuf_iterator<char>(b)), {});
  EXPECT_EQ(sa.size(), sb.size());
  EXPECT_TRUE(sa == sb) << "resumed model differs from the uninterrupted one";
}

}  // namespace
}  // namespace minnow
