// minnow run: runs a model on .npy inputs and writes .npy outputs.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli_common.h"
#include "io/npy.h"
#include "minnow/error.h"
#include "runtime/inference_session.h"

namespace minnow::cli {
namespace {

struct RunArgs {
  std::string model, output, output_dir;
  std::vector<std::string> inputs;
  int threads = 2;
  bool raw = false;
};

// Applies the model's stored per-channel normalization (channel = dim 1) to an f32 input, so
// `run` takes the same raw values (pixels in [0,1]) as the dataset files.
void normalize_input(Tensor& t, const data::Normalization& n) {
  if (n.mean.empty() || t.dtype() != DType::kF32 || t.rank() < 2) return;
  int64_t channels = t.dim(1);
  if (static_cast<int64_t>(n.mean.size()) != channels && n.mean.size() != 1) return;
  int64_t inner = 1;
  for (int d = 2; d < t.rank(); ++d) inner *= t.dim(d);
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) {
    size_t c = n.mean.size() == 1 ? 0 : static_cast<size_t>((i / inner) % channels);
    p[i] = (p[i] - n.mean[c]) / n.std[c];
  }
}

void run_run(const RunArgs& a) {
  set_threads(a.threads);
  if (a.output.empty() == a.output_dir.empty()) {
    throw Error("give exactly one of --output FILE.npy or --output-dir DIR");
  }
  LoadedModel m = load_model(a.model, zoo::ZooOptions{});
  InferenceSession session(m.graph);
  data::Normalization norm = model_normalization(m.metadata, {});
  std::map<std::string, Tensor> feeds;
  for (const std::string& spec : a.inputs) {
    size_t eq = spec.find('=');
    std::string name = eq == std::string::npos ? "" : spec.substr(0, eq);
    std::string path = eq == std::string::npos ? spec : spec.substr(eq + 1);
    if (name.empty()) {
      if (session.inputs().size() != 1) {
        throw Error("model has " + std::to_string(session.inputs().size()) +
                    " inputs; name them as --input NAME=FILE.npy");
      }
      name = session.inputs()[0].name;
    }
    Tensor t = io::read_npy(path);
    if (!a.raw && session.inputs().size() == 1) normalize_input(t, norm);
    if (!feeds.emplace(name, std::move(t)).second) throw Error("input '" + name + "' given twice");
  }
  const std::vector<Tensor>& outs = session.run(feeds);
  if (!a.output.empty()) {
    if (outs.size() != 1) throw Error("model has several outputs; use --output-dir");
    io::write_npy(a.output, outs[0]);
    std::printf("wrote %s %s\n", a.output.c_str(), shape_str(outs[0].shape()).c_str());
    return;
  }
  if (!std::filesystem::is_directory(a.output_dir)) {
    throw Error("--output-dir " + a.output_dir + ": not a directory");
  }
  for (size_t i = 0; i < outs.size(); ++i) {
    std::string path =
        (std::filesystem::path(a.output_dir) / (session.outputs()[i].name + ".npy")).string();
    io::write_npy(path, outs[i]);
    std::printf("wrote %s %s\n", path.c_str(), shape_str(outs[i].shape()).c_str());
  }
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* c = app.add_subcommand("run", "Run a model on .npy inputs");
  c->add_option("model", a->model, "Model (.mnw or .onnx)")->required();
  c->add_option("--input", a->inputs, "[NAME=]FILE.npy (repeatable)")->required();
  c->add_option("--output", a->output, "Output .npy (single-output models)");
  c->add_option("--output-dir", a->output_dir, "Directory for OUTPUT_NAME.npy files");
  c->add_flag("--raw", a->raw, "Do not apply the model's stored input normalization");
  c->add_option("--threads", a->threads, "Threads")->capture_default_str();
  c->callback([a] { run_run(*a); });
}

}  // namespace minnow::cli
