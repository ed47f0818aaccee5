// minnow inspect: per-node table (op, output shape, parameters, MACs, bytes on disk) and totals.
#include <cstdio>
#include <map>
#include <memory>

#include "cli_common.h"
#include "io/mnw_tensors.h"
#include "minnow/error.h"

namespace minnow::cli {
namespace {

struct InspectArgs {
  std::string model, report;
};

// Bytes each node's constants take in a .mnw file (compact encodings included): the tensors it
// reads, and those behind the DequantizeLinear nodes it reads (quantized weights with their
// scales), so that a quantized, pruned or clustered layer shows what it costs on disk.
std::map<std::string, uint64_t> stored_bytes_per_node(const Graph& g) {
  std::map<std::string, uint64_t> bytes;
  auto constant_bytes = [&](const std::string& v) -> uint64_t {
    auto it = g.initializers.find(v);
    return it == g.initializers.end() ? 0 : io::stored_tensor_bytes(it->second.value);
  };
  for (const Node& n : g.nodes) {
    if (n.op == OpKind::kDequantizeLinear || n.op == OpKind::kQuantizeLinear) continue;
    uint64_t b = 0;
    for (const std::string& v : n.inputs) {
      if (v.empty()) continue;
      b += constant_bytes(v);
      const Node* p = g.initializers.count(v) ? nullptr : g.producer(v);
      if (p && p->op == OpKind::kDequantizeLinear && g.initializers.count(p->inputs[0])) {
        for (const std::string& q : p->inputs) b += q.empty() ? 0 : constant_bytes(q);
      }
    }
    bytes[n.name] = b;
  }
  return bytes;
}

void run_inspect(const InspectArgs& a) {
  LoadedModel m = load_model(a.model, zoo::ZooOptions{});
  std::vector<NodeStats> stats = graph_stats(m.graph);
  const std::map<std::string, uint64_t> bytes = stored_bytes_per_node(m.graph);
  auto bytes_of = [&](const std::string& node) {
    auto it = bytes.find(node);
    return it == bytes.end() ? uint64_t{0} : it->second;
  };
  std::printf("%-24s %-16s %-20s %12s %14s %10s\n", "node", "op", "output", "params", "MACs",
              "bytes");
  int64_t macs = 0;
  for (const NodeStats& s : stats) {
    std::printf("%-24s %-16s %-20s %12lld %14lld %10llu\n", s.node.c_str(), s.op.c_str(),
                shape_str(s.output_shape).c_str(), static_cast<long long>(s.params),
                static_cast<long long>(s.macs), static_cast<unsigned long long>(bytes_of(s.node)));
    macs += s.macs;
  }
  int64_t params = 0;  // per node: quantized weights count too (graph.num_params() is floats)
  for (const NodeStats& s : stats) params += s.params;
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
                     {"macs", s.macs},
                     {"stored_bytes", bytes_of(s.node)}});
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
