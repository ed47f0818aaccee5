// End-to-end ONNX through the CLI: export a zoo model, convert it back, run and bench the .onnx
// and the .mnw alike, train an imported model, and the one-line errors for bad ONNX input.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "io/npy.h"

namespace fs = std::filesystem;

namespace minnow {
namespace {

using cli_test::expect_user_error;
using cli_test::run_cli;
using Result = cli_test::CliResult;

class CliOnnx : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("minnow_cli_onnx_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& f) const { return (dir_ / f).string(); }
  fs::path dir_;
};

TEST_F(CliOnnx, ExportConvertRunAndBenchAgree) {
  Result e = run_cli("export lenet5 " + path("l.onnx"));
  ASSERT_EQ(e.code, 0) << e.out;
  Result c = run_cli("convert " + path("l.onnx") + " " + path("l.mnw"));
  ASSERT_EQ(c.code, 0) << c.out;
  Tensor x(DType::kF32, {3, 1, 28, 28});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = std::sin(0.01f * static_cast<float>(i));
  io::write_npy(path("x.npy"), x);
  for (const char* m : {"l.onnx", "l.mnw"}) {
    Result r = run_cli("run " + path(m) + " --raw --input " + path("x.npy") + " --output " +
                       path(std::string(m) + ".y.npy"));
    ASSERT_EQ(r.code, 0) << r.out;
  }
  Tensor a = io::read_npy(path("l.onnx.y.npy")), b = io::read_npy(path("l.mnw.y.npy"));
  ASSERT_EQ(a.shape(), (Shape{3, 10}));
  ASSERT_EQ(b.shape(), a.shape());
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.f32()[i], b.f32()[i]) << i;

  Result bench = run_cli("bench " + path("l.onnx") + " --batch 2 --iters 5 --warmup 1 --threads 1" +
                         " --report-json " + path("bench.json"));
  ASSERT_EQ(bench.code, 0) << bench.out;
  std::ifstream f(path("bench.json"));
  nlohmann::json j = nlohmann::json::parse(f);
  EXPECT_GT(j.at("latency_ms_p50").get<double>(), 0.0) << j.dump();
}

TEST_F(CliOnnx, TrainsAnImportedModel) {
  ASSERT_EQ(run_cli("export lenet5 " + path("l.onnx")).code, 0);
  Result t = run_cli("train --model " + path("l.onnx") +
                     " --reinit --data mnist --epochs 1 --threads 2 --seed 3 --no-checkpoint"
                     " --optimizer adam --lr 0.002 --out " +
                     path("t.mnw") + " --report-json " + path("t.json"));
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_NE(t.out.find("re-initialized"), std::string::npos) << t.out;
  std::ifstream f(path("t.json"));
  nlohmann::json j = nlohmann::json::parse(f);
  EXPECT_GT(j.at("test_acc").get<double>(), 0.85) << j.dump();
}

TEST_F(CliOnnx, BadOnnxInputIsAOneLineError) {
  expect_user_error("convert " + path("missing.onnx") + " " + path("o.mnw"), "missing.onnx");
  {
    std::ofstream g(path("garbage.onnx"), std::ios::binary);
    g << "\x0a\xff\xff\xff\xff\xff this is not an onnx model";
  }
  expect_user_error("convert " + path("garbage.onnx") + " " + path("o.mnw"), "not a valid ONNX");
  EXPECT_FALSE(fs::exists(path("o.mnw")));
  expect_user_error(
      "run " + path("garbage.onnx") + " --input " + path("x.npy") + " --output " + path("y.npy"),
      "garbage.onnx");
  {
    ::onnx::ModelProto m;
    m.add_opset_import()->set_version(13);
    auto* g = m.mutable_graph();
    auto* in = g->add_input();
    in->set_name("x");
    in->mutable_type()->mutable_tensor_type()->set_elem_type(::onnx::TensorProto::FLOAT);
    in->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(2);
    auto* n = g->add_node();
    n->set_op_type("NonMaxSuppression");
    n->set_name("nms");
    n->add_input("x");
    n->add_output("y");
    g->add_output()->set_name("y");
    std::ofstream f(path("nms.onnx"), std::ios::binary);
    f << m.SerializeAsString();
  }
  expect_user_error("convert " + path("nms.onnx") + " " + path("o.mnw"),
                    "unsupported ONNX ops: NonMaxSuppression (node nms)");
  ASSERT_EQ(run_cli("export lenet5 " + path("l.onnx")).code, 0);
  expect_user_error("convert " + path("l.onnx") + " " + path("o.txt"), "must be a .mnw file");
  expect_user_error("export lenet5 " + path("e.onnx") + " --opset 3", "opset");
  EXPECT_FALSE(fs::exists(path("e.onnx")));
}

}  // namespace
}  // namespace minnow
