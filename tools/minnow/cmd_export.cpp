// minnow export: writes a model (.mnw file or zoo name) as an ONNX file that the ONNX checker
// accepts and ONNX Runtime runs (onnx/onnx_export.h). The file is written atomically.

#include <cstdio>
#include <memory>
#include <string>

#include "cli_common.h"
#include "io/atomic_file.h"
#include "minnow/error.h"
#include "onnx/onnx_export.h"

namespace minnow::cli {
namespace {

struct ExportArgs {
  std::string model, output;
  int opset = 17;
  bool static_batch = false;
  int64_t batch = 1;
  bool drop_losses = false;
  bool qoperator = false;
};

void run_export(const ExportArgs& a) {
  LoadedModel m = load_model(a.model, zoo::ZooOptions{});
  onnx::ExportOptions opts;
  opts.opset = a.opset;
  opts.dynamic_batch = !a.static_batch;
  opts.static_batch = a.batch;
  opts.drop_losses = a.drop_losses;
  opts.qoperator = a.qoperator;
  const std::string bytes = onnx::export_onnx_bytes(m.graph, opts);
  io::write_file_atomic(a.output, bytes);
  std::printf("wrote %s: opset %d, %s batch, %zu bytes\n", a.output.c_str(), a.opset,
              a.static_batch ? ("static " + std::to_string(a.batch)).c_str() : "dynamic (N)",
              bytes.size());
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  CLI::App* c = app.add_subcommand("export", "Write a model as an ONNX file");
  c->add_option("model", a->model, "Model (.mnw file or zoo name)")->required();
  c->add_option("output", a->output, "Output .onnx file")->required();
  c->add_option("--opset", a->opset, "ONNX opset version (13..18)")->capture_default_str();
  c->add_flag("--static-batch", a->static_batch,
              "Write a fixed batch size (--batch) instead of the symbolic dim N");
  c->add_option("--batch", a->batch, "Batch size written with --static-batch")
      ->capture_default_str();
  c->add_flag("--drop-losses", a->drop_losses,
              "Leave out loss nodes and the inputs only they read (labels)");
  c->add_flag("--qoperator", a->qoperator,
              "Quantized models: write int8 convolutions and matrix products as ONNX "
              "QLinearConv / QLinearMatMul instead of QuantizeLinear/DequantizeLinear around "
              "float ops");
  c->callback([a] { run_export(*a); });
}

}  // namespace minnow::cli
