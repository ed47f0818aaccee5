// minnow convert in.onnx out.mnw: imports an ONNX model and saves it as a .mnw file (which
// train, eval, run, bench and the compression commands read like any other model).
#include <cstdio>

#include "cli_common.h"
#include "io/mnw.h"
#include "minnow/error.h"
#include "onnx/onnx_import.h"

namespace minnow::cli {
namespace {

struct ConvertArgs {
  std::string in, out;
  bool dynamic_batch = false;
};

void run_convert(const ConvertArgs& a) {
  if (!is_onnx_path(a.in)) throw Error(a.in + ": expected an .onnx file to convert");
  if (a.out.size() < 4 || a.out.compare(a.out.size() - 4, 4, ".mnw") != 0) {
    throw Error(a.out + ": the output must be a .mnw file");
  }
  onnx::ImportOptions opts;
  opts.dynamic_batch = a.dynamic_batch;
  io::MnwContents c;
  c.graph = onnx::import_onnx_file(a.in, opts);
  c.metadata["imported_from"] = a.in;
  io::save_mnw(a.out, c);
  std::printf("converted %s -> %s: %zu nodes, %lld parameters\n", a.in.c_str(), a.out.c_str(),
              c.graph.nodes.size(), static_cast<long long>(c.graph.num_params()));
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto a = std::make_shared<ConvertArgs>();
  CLI::App* cmd = app.add_subcommand("convert", "Import an ONNX model and save it as .mnw");
  cmd->add_option("input", a->in, "ONNX model (.onnx)")->required();
  cmd->add_option("output", a->out, "output model (.mnw)")->required();
  cmd->add_flag("--dynamic-batch", a->dynamic_batch,
                "make the first dimension of every input the symbolic batch");
  cmd->callback([a] { run_convert(*a); });
}

}  // namespace minnow::cli
