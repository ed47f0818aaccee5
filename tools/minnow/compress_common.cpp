#include "compress_common.h"

#include <cstdio>

#include "io/mnw.h"
#include "minnow/error.h"
#include "progress.h"

namespace minnow::cli {

void add_compress_flags(CLI::App& cmd, CompressFlags& f, bool positional_model) {
  if (positional_model) {
    cmd.add_option("model", f.model, "Model: a .mnw or .onnx file (or a zoo name)")->required();
  }
  add_data_flags(cmd, f.data);
  cmd.add_option("--out", f.out, "Where to save the result (.mnw)")->required();
  cmd.add_option("--report-json", f.report, "Write the before/after report (JSON)");
  cmd.add_option("--threads", f.threads, "Threads")->capture_default_str();
  cmd.add_option("--seed", f.seed, "Seed")->capture_default_str();
  f.train.epochs = 0;
  cmd.add_option("--epochs", f.train.epochs, "Fine-tuning epochs (0: none)")->capture_default_str();
  cmd.add_option("--batch", f.train.batch, "Fine-tuning batch size")->capture_default_str();
  cmd.add_option("--lr", f.train.lr, "Fine-tuning learning rate")->capture_default_str();
  cmd.add_option("--optimizer", f.train.optimizer.kind, "sgd | adam | adamw")
      ->capture_default_str();
  cmd.add_option("--momentum", f.train.optimizer.momentum, "SGD momentum")->capture_default_str();
  cmd.add_option("--weight-decay", f.train.optimizer.weight_decay, "Weight decay")
      ->capture_default_str();
  cmd.add_option("--schedule", f.train.schedule.kind, "constant | step | cosine")
      ->capture_default_str();
  cmd.add_option("--hidden", f.zoo.hidden, "Zoo mlp: hidden layer sizes")->delimiter(',');
  cmd.add_option("--width", f.zoo.width, "Zoo CNNs: channel multiplier")->capture_default_str();
  cmd.add_option("--dropout", f.zoo.dropout, "Zoo models: dropout before the classifier")
      ->capture_default_str();
  cmd.add_option("--latency-iters", f.latency_iters, "Runs timed for latency_ms_p50")
      ->capture_default_str();
}

zoo::ZooOptions zoo_options_for(const CompressFlags& f, const data::TrainTest& d) {
  zoo::ZooOptions zo;
  zo.input_shape = d.train.sample_shape();
  zo.classes = d.train.num_classes;
  zo.seed = f.seed;
  if (!f.zoo.hidden.empty()) zo.hidden = f.zoo.hidden;
  zo.width = f.zoo.width;
  zo.dropout = f.zoo.dropout;
  if (d.tokenizer) zo.vocab_size = d.tokenizer->vocab_size();
  return zo;
}

CompressJob start_compress_job(const CompressFlags& f, bool measure_before) {
  if (f.out.size() < 4 || f.out.compare(f.out.size() - 4, 4, ".mnw") != 0) {
    throw Error("--out " + f.out + ": the output must be a .mnw file");
  }
  if (f.train.epochs < 0) throw Error("--epochs must be >= 0");
  if (f.data.spec.empty()) throw Error("--data is required (the test split measures accuracy)");
  set_threads(f.threads);
  CompressJob job;
  const bool zoo_model = zoo::has(f.model);
  if (!zoo_model && f.zoo.any()) {
    throw Error("--hidden, --width and --dropout shape a zoo model; '" + f.model +
                "' is a model file");
  }
  if (!zoo_model) job.model = load_model(f.model, zoo::ZooOptions{});
  job.data = load_data(f.data, job.model.metadata);
  if (zoo_model) job.model = load_model(f.model, zoo_options_for(f, job.data));
  job.norm = data_normalization(job.model.metadata, job.data.train);
  if (!job.norm.mean.empty()) {
    job.model.metadata["normalization"] = {{"mean", job.norm.mean}, {"std", job.norm.std}};
  }
  if (job.data.tokenizer) job.model.metadata["tokenizer"] = job.data.tokenizer->to_json();
  if (!measure_before) return job;
  compress::MeasureOptions mo;
  mo.latency_iters = f.latency_iters;
  job.before =
      compress::measure_model(job.model.graph, &job.data.test, job.norm, job.model.metadata, mo);
  return job;
}

int64_t fine_tune(CompressJob& job, const CompressFlags& f, TrainConfig config,
                  TrainResult* result) {
  int64_t trainable = 0;
  for (const auto& [name, init] : job.model.graph.initializers) {
    if (init.trainable && dtype_is_float(init.value.dtype())) trainable += init.value.numel();
  }
  if (config.epochs <= 0) return trainable;
  config.seed = f.seed;
  ProgressPrinter progress;
  config.on_progress = [&](const TrainProgress& p) { progress.on_step(p); };
  config.on_epoch = [&](const EpochSummary& e) { progress.on_epoch(e); };
  TrainResult r = train_model(job.model.graph, job.data.train, job.norm, config);
  if (result) *result = std::move(r);
  return trainable;
}

void finish_compress_job(CompressJob& job, const CompressFlags& f, compress::ModelReport after,
                         const nlohmann::json& extra) {
  const int64_t trainable = after.trainable_params;
  compress::MeasureOptions mo;
  mo.latency_iters = f.latency_iters;
  after =
      compress::measure_model(job.model.graph, &job.data.test, job.norm, job.model.metadata, mo);
  after.trainable_params = trainable;
  job.model.metadata["test_acc"] = after.test_acc;
  io::MnwContents out;
  out.graph = job.model.graph;
  out.metadata = job.model.metadata;
  io::save_mnw(f.out, out);
  after.file_bytes = static_cast<int64_t>(io::serialize_mnw(out).size());
  std::printf("%s -> %s\n", job.model.source.c_str(), f.out.c_str());
  compress::print_before_after(job.before, after);
  nlohmann::json report = compress::before_after_json(job.before, after, extra);
  report["model"] = job.model.source;
  report["out"] = f.out;
  write_report(f.report, report);
}

}  // namespace minnow::cli
