// minnow eval: test loss and accuracy of a model on a dataset's test split.
#include <cstdio>
#include <memory>

#include "cli_common.h"
#include "data/sources.h"
#include "minnow/error.h"
#include "train/trainer.h"

namespace minnow::cli {
namespace {

struct EvalArgs {
  std::string model, report;
  DataFlags data;
  int threads = 2;
  int64_t batch = 256;
};

void run_eval(const EvalArgs& a) {
  set_threads(a.threads);
  if (a.batch <= 0) throw Error("--batch must be positive, got " + std::to_string(a.batch));
  LoadedModel m = load_model(a.model, zoo::ZooOptions{});
  data::TrainTest d = load_data(a.data, m.metadata);
  data::Normalization norm = data_normalization(m.metadata, d.train);
  EvalResult r = evaluate_model(m.graph, d.test, norm, a.batch);
  double img_per_s = r.seconds > 0 ? static_cast<double>(r.samples) / r.seconds : 0;
  std::printf("%s on %s test (%lld samples): loss %.4f, accuracy %.4f, %.0f img/s\n",
              m.source.c_str(), d.name.c_str(), static_cast<long long>(r.samples), r.loss,
              r.accuracy, img_per_s);
  write_report(a.report, {{"model", m.graph.name},
                          {"params", m.graph.num_params()},
                          {"test_loss", r.loss},
                          {"test_acc", r.accuracy},
                          {"samples", r.samples},
                          {"eval_img_per_s", img_per_s}});
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* c = app.add_subcommand("eval", "Evaluate a model on a dataset's test split");
  c->add_option("model", a->model, "Model (.mnw or .onnx)")->required();
  add_data_flags(*c, a->data);
  c->add_option("--threads", a->threads, "Threads")->capture_default_str();
  c->add_option("--batch", a->batch, "Batch size")->capture_default_str();
  c->add_option("--report-json", a->report, "Write a JSON report");
  c->callback([a] { run_eval(*a); });
}

}  // namespace minnow::cli
