// minnow zoo: lists the zoo architectures with parameter and MAC counts.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli_common.h"
#include "minnow/error.h"

namespace minnow::cli {
namespace {

struct ZooArgs {
  std::vector<int64_t> input_shape = {1, 28, 28};
  int64_t classes = 10;
  double width = 1.0;
  std::string report;
};

void run_zoo(const ZooArgs& a) {
  zoo::ZooOptions o;
  o.input_shape = a.input_shape;
  o.classes = a.classes;
  o.width = a.width;
  // Build every row before printing, so that bad flags fail with one message and no table.
  struct Row {
    std::string name, text;
    int64_t params = 0, macs = 0;
    bool ok = false;
  };
  std::vector<Row> table;
  size_t failed = 0;
  for (const zoo::ZooEntry& e : zoo::entries()) {
    Row r{e.name, e.description};
    try {
      Graph g = zoo::build(e.name, o);
      r.params = g.num_params();
      for (const NodeStats& s : graph_stats(g)) r.macs += s.macs;
      r.ok = true;
    } catch (const Error& err) {
      // An architecture that does not fit the input (too small for its strides) is a fact
      // about its row; the listing fails only when no architecture fits (bad flags).
      if (++failed == zoo::entries().size()) throw;
      r.text = err.what();
    }
    table.push_back(std::move(r));
  }
  int w = 5;
  for (const Row& r : table) w = std::max(w, static_cast<int>(r.name.size()));
  std::printf("%-*s %10s %12s  %s\n", w, "model", "params", "MACs", "description");
  nlohmann::json rows = nlohmann::json::array();
  for (const Row& r : table) {
    if (r.ok) {
      std::printf("%-*s %10lld %12lld  %s\n", w, r.name.c_str(), static_cast<long long>(r.params),
                  static_cast<long long>(r.macs), r.text.c_str());
      rows.push_back({{"model", r.name}, {"params", r.params}, {"macs", r.macs}});
    } else {
      std::printf("%-*s %10s %12s  (%s)\n", w, r.name.c_str(), "-", "-", r.text.c_str());
      rows.push_back({{"model", r.name}, {"error", r.text}});
    }
  }
  write_report(a.report, {{"input_shape", a.input_shape},
                          {"classes", a.classes},
                          {"width", a.width},
                          {"models", rows}});
}

}  // namespace

void add_zoo_command(CLI::App& app) {
  auto a = std::make_shared<ZooArgs>();
  CLI::App* c = app.add_subcommand("zoo", "List zoo models with parameters and MACs");
  c->add_option("--input-shape", a->input_shape, "Sample shape C,H,W")->delimiter(',');
  c->add_option("--classes", a->classes, "Number of classes")->capture_default_str();
  c->add_option("--width", a->width, "Channel multiplier of the CNNs")->capture_default_str();
  c->add_option("--report-json", a->report, "Write a JSON report");
  c->callback([a] { run_zoo(*a); });
}

}  // namespace minnow::cli
