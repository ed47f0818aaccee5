// minnow train: trains a zoo model or a .mnw model on a dataset and saves it.
#include <cstdio>
#include <memory>

#include "cli_common.h"
#include "compress/prune_masks.h"
#include "data/sources.h"
#include "io/mnw.h"
#include "minnow/error.h"
#include "progress.h"
#include "train/reinit.h"
#include "train/trainer.h"

namespace minnow::cli {
namespace {

struct TrainArgs {
  std::string model, out, report, resume, checkpoint;
  DataFlags data;
  bool no_checkpoint = false;
  bool reinit = false;
  int threads = 2;
  int64_t classes = 0;
  std::vector<int64_t> hidden;
  double width = 1.0;
  double dropout = 0.0;
  TrainConfig cfg;
};

void run_train(const TrainArgs& a) {
  set_threads(a.threads);
  if (a.model.empty() && a.resume.empty()) throw Error("--model is required (or --resume CKPT)");
  if (a.out.empty()) throw Error("--out FILE.mnw is required");
  // Validate cheap flags before the (slow) data loading.
  if (a.cfg.epochs <= 0)
    throw Error("--epochs must be positive, got " + std::to_string(a.cfg.epochs));
  if (a.cfg.batch <= 0) throw Error("--batch must be positive, got " + std::to_string(a.cfg.batch));
  make_optimizer(a.cfg.optimizer, {});

  // A model file (or checkpoint) comes first: its stored tokenizer decides how text data is
  // encoded. Zoo models are built after the data, whose sample shape they take.
  LoadedModel m;
  const bool zoo_model = !a.model.empty() && zoo::has(a.model);
  if (!a.model.empty() && !zoo_model) {
    m = load_model(a.model, zoo::ZooOptions{});
  } else if (a.model.empty()) {
    io::MnwContents c = io::load_mnw(a.resume);
    m.graph = std::move(c.graph);
    m.metadata = std::move(c.metadata);
  }
  data::TrainTest d = load_data(a.data, m.metadata);
  if (zoo_model) {
    zoo::ZooOptions zo;
    zo.input_shape = d.train.sample_shape();
    zo.classes = a.classes > 0 ? a.classes : d.train.num_classes;
    zo.seed = a.cfg.seed;
    if (!a.hidden.empty()) zo.hidden = a.hidden;
    zo.width = a.width;
    zo.dropout = a.dropout;
    if (d.tokenizer) zo.vocab_size = d.tokenizer->vocab_size();
    m = load_model(a.model, zo);
  }
  if (a.reinit) {
    if (zoo_model || a.model.empty())
      throw Error("--reinit applies to a model file (--model FILE)");
    const int n = reinitialize_parameters(m.graph, a.cfg.seed);
    std::printf("re-initialized %d parameter tensors\n", n);
  }
  data::Normalization norm = data_normalization(m.metadata, d.train);
  if (d.tokenizer) m.metadata["tokenizer"] = d.tokenizer->to_json();

  TrainConfig cfg = a.cfg;
  if (m.metadata.contains("pruning") && !a.reinit) {
    // A pruned model keeps its sparsity through further training: its zeros are its mask.
    auto masks = std::make_shared<compress::PruneMasks>(
        compress::PruneMasks::from_zeros(m.graph, compress::prunable_layers(m.graph)));
    compress::PruneMasks::install(masks, cfg);
  }
  cfg.resume_path = a.resume;
  cfg.checkpoint_path =
      a.no_checkpoint ? "" : (a.checkpoint.empty() ? a.out + ".ckpt" : a.checkpoint);
  ProgressPrinter progress;
  cfg.on_progress = [&](const TrainProgress& p) { progress.on_step(p); };
  cfg.on_epoch = [&](const EpochSummary& e) { progress.on_epoch(e); };
  Graph& g = m.graph;
  TrainResult r = train_model(g, d.train, norm, cfg);
  EvalResult test = evaluate_model(g, d.test, norm);

  io::MnwContents out;
  out.graph = g;
  out.metadata = m.metadata;
  if (!norm.mean.empty()) out.metadata["normalization"] = {{"mean", norm.mean}, {"std", norm.std}};
  out.metadata["class_names"] = d.train.class_names;
  out.metadata["trained_on"] = d.name;
  out.metadata["test_acc"] = test.accuracy;
  io::save_mnw(a.out, out);

  double img_per_s = r.train_seconds > 0 ? static_cast<double>(r.images) / r.train_seconds : 0;
  std::printf("model %s (%lld params) trained %lld epochs, %lld steps, batch %lld, %d threads\n",
              g.name.c_str(), static_cast<long long>(g.num_params()),
              static_cast<long long>(r.epochs_run), static_cast<long long>(r.steps),
              static_cast<long long>(cfg.batch), a.threads);
  std::printf("train: %.1f s, %.0f img/s, final loss %.4f%s\n", r.train_seconds, img_per_s,
              r.final_train_loss, r.stopped_early ? " (stopped early)" : "");
  std::printf("test:  loss %.4f, accuracy %.4f\n", test.loss, test.accuracy);
  std::printf("saved %s\n", a.out.c_str());
  write_report(a.report, {{"model", g.name},
                          {"params", g.num_params()},
                          {"epochs", r.epochs_run},
                          {"steps", r.steps},
                          {"batch", cfg.batch},
                          {"threads", a.threads},
                          {"train_seconds", r.train_seconds},
                          {"train_img_per_s", img_per_s},
                          {"final_train_loss", r.final_train_loss},
                          {"test_loss", test.loss},
                          {"test_acc", test.accuracy},
                          {"stopped_early", r.stopped_early}});
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* c = app.add_subcommand("train", "Train a zoo model or a .mnw model on a dataset");
  c->add_option("--model", a->model,
                "Zoo model name (see `minnow zoo`), a .mnw file or an .onnx file");
  c->add_flag("--reinit", a->reinit,
              "Re-initialize the parameters of a model file (train it from scratch)");
  add_data_flags(*c, a->data);
  c->add_option("--out", a->out, "Where to save the trained model (.mnw)");
  c->add_option("--epochs", a->cfg.epochs, "Training epochs")->capture_default_str();
  c->add_option("--batch", a->cfg.batch, "Batch size")->capture_default_str();
  c->add_option("--optimizer", a->cfg.optimizer.kind, "sgd | adam | adamw")->capture_default_str();
  c->add_option("--lr", a->cfg.lr, "Learning rate")->capture_default_str();
  c->add_option("--momentum", a->cfg.optimizer.momentum, "SGD momentum")->capture_default_str();
  c->add_flag("--nesterov", a->cfg.optimizer.nesterov, "Nesterov momentum (SGD)");
  c->add_option("--weight-decay", a->cfg.optimizer.weight_decay, "Weight decay")
      ->capture_default_str();
  c->add_option("--schedule", a->cfg.schedule.kind, "constant | step | cosine")
      ->capture_default_str();
  c->add_option("--step-epochs", a->cfg.schedule.step_epochs, "step schedule: epochs per decay");
  c->add_option("--gamma", a->cfg.schedule.gamma, "step schedule: decay factor")
      ->capture_default_str();
  c->add_option("--warmup-steps", a->cfg.schedule.warmup_steps, "Linear LR warm-up steps");
  c->add_option("--clip-grad-norm", a->cfg.clip_grad_norm,
                "Clip the global gradient norm (0: off)");
  c->add_option("--label-smoothing", a->cfg.label_smoothing, "Cross-entropy label smoothing");
  c->add_option("--augment-shift", a->cfg.augment.shift, "Random shift/crop with padding (pixels)");
  c->add_flag("--augment-flip", a->cfg.augment.hflip, "Random horizontal flip");
  c->add_option("--threads", a->threads, "Threads")->capture_default_str();
  c->add_option("--seed", a->cfg.seed, "Seed: same seed and threads give the same run")
      ->capture_default_str();
  c->add_option("--val-split", a->cfg.val_split, "Fraction of training data for validation");
  c->add_option("--early-stop-metric", a->cfg.early_stop_metric, "val_acc | val_loss")
      ->capture_default_str();
  c->add_option("--patience", a->cfg.patience, "Stop after this many epochs without improvement");
  c->add_option("--classes", a->classes, "Number of classes (default: from the data)");
  c->add_option("--hidden", a->hidden, "mlp: hidden layer sizes")->delimiter(',');
  c->add_option("--width", a->width, "Zoo CNNs: channel multiplier")->capture_default_str();
  c->add_option("--dropout", a->dropout, "Zoo models: dropout before the classifier")
      ->capture_default_str();
  c->add_option("--resume", a->resume, "Continue a run from its checkpoint");
  c->add_option("--checkpoint", a->checkpoint, "Checkpoint file (default: OUT.ckpt)");
  c->add_flag("--no-checkpoint", a->no_checkpoint, "Do not write checkpoints");
  c->add_option("--stop-after-epoch", a->cfg.stop_after_epoch, "Stop after this epoch (testing)")
      ->group("");
  c->add_option("--report-json", a->report, "Write a JSON report");
  c->callback([a] { run_train(*a); });
}

}  // namespace minnow::cli
