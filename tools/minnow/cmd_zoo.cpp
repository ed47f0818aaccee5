// minnow zoo: lists the zoo architectures with parameter and MAC counts.
#include <cstdio>
#include <memory>

#include "cli_common.h"

namespace minnow::cli {
namespace {

struct ZooArgs {
  std::vector<int64_t> input_shape = {1, 28, 28};
  int64_t classes = 10;
  std::string report;
};

void run_zoo(const ZooArgs& a) {
  zoo::ZooOptions o;
  o.input_shape = a.input_shape;
  o.classes = a.classes;
  std::printf("%-12s %12s %14s  %s\n", "model", "params", "MACs", "description");
  nlohmann::json rows = nlohmann::json::array();
  for (const zoo::ZooEntry& e : zoo::entries()) {
    Graph g = zoo::build(e.name, o);
    int64_t macs = 0;
    for (const NodeStats& s : graph_stats(g)) macs += s.macs;
    std::printf("%-12s %12lld %14lld  %s\n", e.name.c_str(), static_cast<long long>(g.num_params()),
                static_cast<long long>(macs), e.description.c_str());
    rows.push_back({{"model", e.name}, {"params", g.num_params()}, {"macs", macs}});
  }
  write_report(a.report, {{"input_shape", a.input_shape}, {"models", rows}});
}

}  // namespace

void add_zoo_command(CLI::App& app) {
  auto a = std::make_shared<ZooArgs>();
  CLI::App* c = app.add_subcommand("zoo", "List zoo models with parameters and MACs");
  c->add_option("--input-shape", a->input_shape, "Sample shape C,H,W")->delimiter(',');
  c->add_option("--classes", a->classes, "Number of classes")->capture_default_str();
  c->add_option("--report-json", a->report, "Write a JSON report");
  c->callback([a] { run_zoo(*a); });
}

}  // namespace minnow::cli
