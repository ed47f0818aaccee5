// minnow cluster: weight sharing by per-layer k-means (compress/cluster.h) with 2^bits values
// per layer, fine-tuning of the shared values, and compact codebook storage in the saved .mnw.
#include <cstdio>
#include <memory>

#include "compress/cluster.h"
#include "compress_common.h"
#include "minnow/error.h"

namespace minnow::cli {
namespace {

struct ClusterArgs {
  CompressFlags common;
  compress::ClusterOptions opts;
  std::string gradient = "mean";
};

void run_cluster(ClusterArgs& a) {
  if (a.gradient != "mean" && a.gradient != "sum") {
    throw Error("--cluster-gradient must be mean or sum, got '" + a.gradient + "'");
  }
  a.opts.sum_gradients = a.gradient == "sum";
  if (a.opts.bits < 1 || a.opts.bits > 8) throw Error("--bits must be in 1..8");
  CompressJob job = start_compress_job(a.common);
  compress::WeightClusters wc = compress::cluster_weights(job.model.graph, a.opts);
  nlohmann::json layers = nlohmann::json::array();
  for (const compress::LayerClusters& l : wc.layers) {
    const Tensor& w = job.model.graph.initializers.at(l.param).value;
    const int64_t distinct = compress::count_distinct(w);
    std::printf("clustered %s (%s): %lld values, %d Lloyd iterations, rms change %.3g%s\n",
                l.param.c_str(), l.node.c_str(), static_cast<long long>(distinct), l.iterations,
                std::sqrt(l.mse), l.zero_fixed ? ", zeros kept" : "");
    layers.push_back({{"node", l.node},
                      {"param", l.param},
                      {"distinct_values", distinct},
                      {"zero_fixed", l.zero_fixed},
                      {"iterations", l.iterations},
                      {"mse", l.mse}});
  }
  std::fflush(stdout);
  if (wc.layers.empty()) throw Error("the model has no Linear or Conv2d weights to cluster");
  compress::ModelReport after;
  nlohmann::json extra = {{"bits", a.opts.bits}, {"clustered", layers}};
  if (a.common.train.epochs > 0) {
    extra["test_acc_before_fine_tuning"] =
        evaluate_model(job.model.graph, job.data.test, job.norm).accuracy;
    TrainConfig config = a.common.train;
    config.before_step = [&wc](int64_t, std::vector<ParamRef>& p) { wc.share_gradients(p); };
    config.after_step = [&wc](int64_t, std::vector<ParamRef>& p) { wc.snap(p); };
    after.trainable_params = fine_tune(job, a.common, config);
    // The training session updated the graph's weights in place; make them exactly the shared
    // values (snap already did after every step; this guards a run with no steps).
    wc.apply(job.model.graph);
  }
  finish_compress_job(job, a.common, after, extra);
}

}  // namespace

void add_cluster_command(CLI::App& app) {
  auto a = std::make_shared<ClusterArgs>();
  CLI::App* c = app.add_subcommand(
      "cluster",
      "Weight sharing: per-layer k-means to 2^bits values, fine-tuned and stored "
      "as packed indices + codebook");
  add_compress_flags(*c, a->common);
  c->add_option("--bits", a->opts.bits, "Bits per weight index (2^bits values per layer)")
      ->capture_default_str();
  c->add_option("--layers", a->opts.layers,
                "Node-name patterns (glob, comma-separated); default: every Linear and Conv2d")
      ->delimiter(',');
  c->add_option("--max-iterations", a->opts.max_iterations, "Lloyd iterations per layer")
      ->capture_default_str();
  c->add_option("--cluster-gradient", a->gradient,
                "Gradient of a shared value: mean or sum of its members' gradients")
      ->capture_default_str();
  c->callback([a] { run_cluster(*a); });
}

}  // namespace minnow::cli
