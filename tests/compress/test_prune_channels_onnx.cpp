// Channel pruning of an imported ONNX model (issue 5: "pruning an imported ONNX model works end
// to end and re-exports to ONNX that ONNX Runtime runs with matching outputs"). torchvision's
// mobilenet_v2 is exported by tests/golden/gen_onnx_golden.py (BN folded into the convs by the
// exporter, and the _bn variant that keeps BatchNormalization nodes), imported, pruned to half
// its MACs, exported again and run by ONNX Runtime (tests/onnx/ort_run.js).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "compress/channel_prune.h"
#include "core/rng.h"
#include "io/npy.h"
#include "minnow/error.h"
#include "onnx/onnx_export.h"
#include "onnx/onnx_import.h"
#include "runtime/inference_session.h"

namespace minnow {
namespace {

namespace fs = std::filesystem;

struct ScratchDir {
  fs::path path;
  ScratchDir()
      : path(fs::temp_directory_path() / ("minnow_prune_onnx_" + std::to_string(getpid()))) {
    fs::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

const fs::path& work_dir() {
  static const ScratchDir dir;
  return dir.path;
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// torchvision mobilenet_v2 (and its BatchNorm-keeping twin) as ONNX, written once per process.
fs::path torchvision_onnx(const std::string& name) {
  static bool generated = false;
  if (!generated) {
    const fs::path log = work_dir() / "gen.log";
    const std::string cmd =
        "/usr/bin/python3 " + q(fs::path(MINNOW_SOURCE_DIR) / "tests/golden/gen_onnx_golden.py") +
        " " + q(work_dir()) + " --only mobilenet_v2,mobilenet_v2_bn > " + q(log) + " 2>&1";
    if (std::system(cmd.c_str()) != 0) throw Error("gen_onnx_golden.py failed: " + read_text(log));
    generated = true;
  }
  return work_dir() / (name + ".onnx");
}

Tensor ort_output(const fs::path& model, const Tensor& x) {
  const fs::path in = model.string() + ".in.npy", out = model.string() + ".out";
  io::write_npy(in.string(), x);
  const fs::path log = model.string() + ".ort.txt";
  const std::string cmd = "node " + q(fs::path(MINNOW_SOURCE_DIR) / "tests/onnx/ort_run.js") + " " +
                          q(model) + " " + q(out) + " " + q(in) + " 2>" + q(log);
  if (std::system(cmd.c_str()) != 0) throw Error("ort_run failed: " + read_text(log));
  return io::read_npy((out / "output.npy").string());
}

void expect_close(const Tensor& got, const Tensor& want) {
  ASSERT_EQ(got.shape(), want.shape());
  double worst = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double e =
        std::abs(double{got.f32()[i]} - want.f32()[i]) / (1.0 + std::abs(want.f32()[i]));
    worst = std::max(worst, std::isnan(e) ? INFINITY : e);
  }
  EXPECT_LE(worst, 1e-4);
}

void prune_export_and_compare(const std::string& name) {
  Graph g = onnx::import_onnx_file(torchvision_onnx(name).string());
  compress::ChannelPruneOptions opt;
  opt.macs_reduction = 0.5;
  const compress::ChannelPruneResult r = compress::channel_prune(g, opt);
  EXPECT_LE(r.macs_after, r.macs_before / 2);
  EXPECT_GT(r.pruned_groups, 10);  // the expand convs and the tied residual groups
  EXPECT_LT(r.params_after, r.params_before);
  g.validate();

  const fs::path exported = work_dir() / (name + ".pruned.onnx");
  onnx::export_onnx_file(g, exported.string());
  Tensor x(DType::kF32, {1, 3, 96, 96});
  Rng rng(7);
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = rng.normal();
  InferenceSession session(g);
  const Tensor mine = session.run({{g.inputs[0].name, x}})[0].clone();
  expect_close(mine, ort_output(exported, x));
}

TEST(PruneChannelsOnnx, TorchvisionMobilenetV2FoldedBn) {
  prune_export_and_compare("mobilenet_v2");
}

TEST(PruneChannelsOnnx, TorchvisionMobilenetV2WithBatchNorm) {
  prune_export_and_compare("mobilenet_v2_bn");
}

}  // namespace
}  // namespace minnow
