// minnow inspect: per-node table (op, output shape, parameters, MACs) and totals.
#include <cstdio>
#include <memory>

#include "cli_common.h"
#include "minnow/error.h"

namespace minnow::cli {
namespace {

struct InspectArgs {
  std::string model, report;
};

void run_inspect(const InspectArgs& a) {
  LoadedModel m = load_model(a.model, zoo::ZooOptions{});
  std::vector<NodeStats> stats = graph_stats(m.graph);
  std::printf("%-24s %-16s %-20s %12s %14s\n", "node", "op", "output", "params", "MACs");
  int64_t macs = 0;
  for (const NodeStats& s : stats) {
    std::printf("%-24s %-16s %-20s %12lld %14lld\n", s.node.c_str(), s.op.c_str(),
                shape_str(s.output_shape).c_str(), static_cast<long long>(s.params),
                static_cast<long long>(s.macs));
    macs += s.macs;
  }
  int64_t params = m.graph.num_params();
  std::printf("total: %zu nodes, %lld parameters, %lld MACs per sample", stats.size(),
              static_cast<long long>(params), static_cast<long long>(macs));
  if (m.file_bytes) std::printf(", file %lld bytes", static_cast<long long>(m.file_bytes));
  std::printf("\n");
  nlohmann::json nodes = nlohmann::json::array();
  for (const NodeStats& s : stats) {
    nodes.push_back({{"node", s.node},
                     {"op", s.op},
                     {"output_shape", s.output_shape},
                     {"params", s.params},
                     {"macs", s.macs}});
  }
  write_report(a.report, {{"model", m.graph.name},
                          {"params", params},
                          {"macs", macs},
                          {"file_bytes", m.file_bytes},
                          {"nodes", nodes}});
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto a = std::make_shared<InspectArgs>();
  CLI::App* c = app.add_subcommand("inspect", "Per-node table of a model: op, shape, params, MACs");
  c->add_option("model", a->model, "Model (.mnw or .onnx file, or zoo name)")->required();
  c->add_option("--report-json", a->report, "Write a JSON report");
  c->callback([a] { run_inspect(*a); });
}

}  // namespace minnow::cli
