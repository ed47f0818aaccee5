// minnow factorize: low-rank factorization of Linear and 1x1 Conv2d layers by truncated SVD
// (passes/factorize.h), by rank or retained energy, followed by optional fine-tuning; reports
// parameters, MACs, size, accuracy and latency before and after.
#include <cstdio>
#include <memory>

#include "compress_common.h"
#include "minnow/error.h"
#include "passes/factorize.h"

namespace minnow::cli {
namespace {

struct FactorizeArgs {
  CompressFlags common;
  std::vector<std::string> layers;
  int64_t rank = 0;
  double energy = 0;
};

void run_factorize(FactorizeArgs& a) {
  if ((a.rank > 0) == (a.energy > 0)) throw Error("give exactly one of --rank R and --energy E");
  if (a.energy < 0 || a.energy > 1) throw Error("--energy must be in (0, 1]");
  if (a.rank < 0) throw Error("--rank must be > 0");
  CompressJob job = start_compress_job(a.common);
  FactorizeOptions opts;
  opts.layers = a.layers;
  opts.rank = a.rank;
  opts.energy = a.energy;
  FactorizeResult r = factorize(job.model.graph, opts);
  nlohmann::json layers = nlohmann::json::array();
  for (const FactorizedLayer& l : r.factorized) {
    std::printf(
        "factorized %s: %lldx%lld -> rank %lld (%.2f%% of the energy), %lld -> %lld weights\n",
        l.node.c_str(), static_cast<long long>(l.out), static_cast<long long>(l.in),
        static_cast<long long>(l.rank), 100 * l.energy, static_cast<long long>(l.params_before),
        static_cast<long long>(l.params_after));
    layers.push_back({{"node", l.node},
                      {"in", l.in},
                      {"out", l.out},
                      {"rank", l.rank},
                      {"energy", l.energy},
                      {"params_before", l.params_before},
                      {"params_after", l.params_after}});
  }
  for (const std::string& s : r.skipped) std::printf("skipped %s\n", s.c_str());
  std::fflush(stdout);
  if (r.factorized.empty()) {
    throw Error("no layer was factorized (" + std::to_string(r.skipped.size()) +
                " skipped: the rank does not reduce their parameters)");
  }
  compress::ModelReport after;
  nlohmann::json extra = {{"factorized", layers}, {"skipped", r.skipped}};
  if (a.common.train.epochs > 0) {
    extra["test_acc_before_fine_tuning"] =
        evaluate_model(job.model.graph, job.data.test, job.norm).accuracy;
    after.trainable_params = fine_tune(job, a.common, a.common.train);
  }
  finish_compress_job(job, a.common, after, extra);
}

}  // namespace

void add_factorize_command(CLI::App& app) {
  auto a = std::make_shared<FactorizeArgs>();
  CLI::App* c = app.add_subcommand(
      "factorize", "Low-rank factorization (truncated SVD) of Linear and 1x1 Conv2d layers");
  add_compress_flags(*c, a->common);
  c->add_option("--layers", a->layers,
                "Node-name patterns (glob, comma-separated); default: every eligible layer")
      ->delimiter(',');
  c->add_option("--rank", a->rank, "Rank kept per layer");
  c->add_option("--energy", a->energy,
                "Instead of --rank: keep the smallest rank retaining this fraction of sum(s^2)");
  c->callback([a] { run_factorize(*a); });
}

}  // namespace minnow::cli
