// Parameter and MAC counts of every zoo model against independent PyTorch counts
// (tests/golden/zoo_counts.json, written by tests/golden/gen_zoo_counts.py from the twins in
// tests/golden/zoo_torch.py). The counts are the ones `minnow zoo` prints: Graph::num_params()
// and the sum of graph_stats() MACs. Entries with an "error" are inputs PyTorch could not run;
// minnow must refuse them as well.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "minnow/error.h"
#include "minnow/zoo.h"

namespace minnow {
namespace {

const std::string kCounts = std::string(MINNOW_SOURCE_DIR) + "/tests/golden/zoo_counts.json";

const nlohmann::json& entries() {
  static const nlohmann::json kEntries = [] {
    std::ifstream f(kCounts);
    if (!f) throw Error("cannot open " + kCounts + " (run tests/golden/gen_zoo_counts.py)");
    return nlohmann::json::parse(f).at("entries");
  }();
  return kEntries;
}

zoo::ZooOptions options(const nlohmann::json& e) {
  zoo::ZooOptions o;
  o.input_shape = e.at("input_shape").get<Shape>();
  o.classes = e.at("classes").get<int64_t>();
  o.width = e.at("width").get<double>();
  if (e.contains("hidden")) o.hidden = e.at("hidden").get<std::vector<int64_t>>();
  if (e.contains("vocab_size")) o.vocab_size = e.at("vocab_size").get<int64_t>();
  return o;
}

std::string describe(const nlohmann::json& e) {
  nlohmann::json config = e;
  config.erase("params");
  config.erase("macs");
  return config.dump();
}

int64_t total_macs(const Graph& g) {
  int64_t macs = 0;
  for (const NodeStats& s : graph_stats(g)) macs += s.macs;
  return macs;
}

TEST(ZooCounts, EveryModelMatchesItsPyTorchTwin) {
  ASSERT_GT(entries().size(), 100u);
  int checked = 0, refused = 0;
  for (const nlohmann::json& e : entries()) {
    const std::string model = e.at("model").get<std::string>();
    SCOPED_TRACE(describe(e));
    if (e.contains("error")) {
      EXPECT_THROW(zoo::build(model, options(e)), Error);
      ++refused;
      continue;
    }
    Graph g = zoo::build(model, options(e));
    EXPECT_EQ(g.num_params(), e.at("params").get<int64_t>()) << model << " params";
    EXPECT_EQ(total_macs(g), e.at("macs").get<int64_t>()) << model << " MACs";
    ++checked;
  }
  std::printf("[ counts ] %d configurations compared with PyTorch, %d that both must refuse\n",
              checked, refused);
}

TEST(ZooCounts, EveryZooModelIsCovered) {
  std::set<std::string> counted;
  for (const nlohmann::json& e : entries()) {
    if (!e.contains("error")) counted.insert(e.at("model").get<std::string>());
  }
  for (const zoo::ZooEntry& z : zoo::entries()) {
    EXPECT_TRUE(counted.count(z.name)) << z.name << " has no entry in " << kCounts;
  }
}

// The same numbers through the CLI: `minnow zoo --report-json` for one image and one text
// configuration, row by row against the PyTorch entries of that configuration.
std::string run_cli(const std::string& args) {
  const std::string cmd = std::string(MINNOW_CLI_PATH) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "popen failed";
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << cmd << "\n" << out;
  return out;
}

void expect_cli_matches(const std::string& shape_flag, const Shape& shape, int64_t classes,
                        double width, size_t want_rows) {
  const std::string report = ::testing::TempDir() + "/zoo_counts_report.json";
  run_cli("zoo --input-shape " + shape_flag + " --classes " + std::to_string(classes) +
          " --width " + std::to_string(width) + " --report-json " + report);
  std::ifstream f(report);
  ASSERT_TRUE(f) << report;
  const nlohmann::json rows = nlohmann::json::parse(f).at("models");
  size_t matched = 0;
  for (const nlohmann::json& e : entries()) {
    if (e.contains("error") || e.contains("hidden") || e.at("input_shape").get<Shape>() != shape ||
        e.at("classes").get<int64_t>() != classes || e.at("width").get<double>() != width ||
        (e.contains("vocab_size") &&
         e.at("vocab_size").get<int64_t>() != zoo::ZooOptions{}.vocab_size)) {
      continue;
    }
    for (const nlohmann::json& r : rows) {
      if (r.at("model") != e.at("model")) continue;
      SCOPED_TRACE(describe(e));
      ASSERT_TRUE(r.contains("params")) << r.dump();
      EXPECT_EQ(r.at("params").get<int64_t>(), e.at("params").get<int64_t>());
      EXPECT_EQ(r.at("macs").get<int64_t>(), e.at("macs").get<int64_t>());
      ++matched;
    }
  }
  EXPECT_EQ(matched, want_rows);
  std::remove(report.c_str());
}

TEST(ZooCounts, CliReportAgreesWithPyTorch) {
  expect_cli_matches("3,32,32", {3, 32, 32}, 100, 0.5, 10);  // every image model
  expect_cli_matches("64", {64}, 2, 1.0, 3);                 // the text models, default vocab
}

}  // namespace
}  // namespace minnow
