// End-to-end tests of `minnow factorize` and `minnow cluster` on a tiny IDX dataset written by
// the test: reports, saved models that load, compact storage on disk, one-line user errors.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "compress/cluster.h"
#include "io/mnw.h"

namespace fs = std::filesystem;

namespace minnow {
namespace {

using Result = cli_test::CliResult;
inline Result minnow(const std::string& args) { return cli_test::run_cli(args); }

class CompressCli : public cli_test::ScratchSuite<CompressCli> {
 protected:
  static void SetUpTestSuite() {
    make_dir("fc");
    cli_test::write_row_dataset(dir_ / "data", 300, 100, 2);
    Result t = minnow("train --model mlp --hidden 48 --epochs 2 --threads 1 --data " + data() +
                      " --out " + path("base.mnw"));
    ASSERT_EQ(t.code, 0) << t.out;
  }
};

TEST_F(CompressCli, FactorizeShrinksAndReports) {
  Result r = minnow("factorize " + path("base.mnw") + " --data " + data() +
                    " --layers fc1 --rank 4 --epochs 1 --threads 1 --latency-iters 5 --out " +
                    path("lr.mnw") + " --report-json " + path("lr.json"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("factorized fc1: 48x144 -> rank 4"), std::string::npos) << r.out;
  nlohmann::json j = report("lr.json");
  EXPECT_EQ(j["before"]["params"].get<int64_t>() - j["after"]["params"].get<int64_t>(),
            48 * 144 - 4 * (48 + 144));
  EXPECT_EQ(j["after"]["file_bytes"].get<int64_t>(),
            static_cast<int64_t>(fs::file_size(path("lr.mnw"))));
  EXPECT_EQ(j["factorized"][0]["rank"], 4);
  io::MnwContents m = io::load_mnw(path("lr.mnw"));
  EXPECT_NE(m.graph.find_node("fc1.v"), nullptr);
  EXPECT_NE(m.graph.find_node("fc1.u"), nullptr);
}

TEST_F(CompressCli, ClusterKeepsSharedValuesOnDisk) {
  Result r = minnow("cluster " + path("base.mnw") + " --data " + data() +
                    " --bits 3 --epochs 1 --threads 1 --latency-iters 5 --out " + path("cl.mnw") +
                    " --report-json " + path("cl.json"));
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json j = report("cl.json");
  EXPECT_EQ(j["bits"], 3);
  EXPECT_LT(j["after"]["file_bytes"].get<int64_t>(), j["before"]["file_bytes"].get<int64_t>());
  EXPECT_EQ(j["after"]["file_bytes"].get<int64_t>(),
            static_cast<int64_t>(fs::file_size(path("cl.mnw"))));
  io::MnwContents m = io::load_mnw(path("cl.mnw"));
  int clustered = 0;
  for (const Node& n : m.graph.nodes) {
    if (n.op != OpKind::kLinear) continue;
    EXPECT_LE(compress::count_distinct(m.graph.initializers.at(n.inputs[1]).value), 8) << n.name;
    ++clustered;
  }
  EXPECT_GE(clustered, 2);
}

TEST_F(CompressCli, UserErrorsAreOneLineAndWriteNothing) {
  const std::string base = path("base.mnw") + " --data " + data() + " --out " + path("bad.mnw");
  struct Case {
    std::string args, needle;
  };
  for (const Case& c : std::vector<Case>{
           {"factorize " + base, "exactly one of --rank R and --energy E"},
           {"factorize " + base + " --rank 4 --energy 0.5", "exactly one of"},
           {"factorize " + base + " --rank 4 --layers conv9", "'conv9' matches no"},
           {"factorize " + base + " --energy 1.5", "--energy must be in (0, 1]"},
           {"cluster " + base + " --bits 9", "--bits must be in 1..8"},
           {"cluster " + base + " --bits 4 --layers nope", "'nope' matches no"},
           {"cluster " + base + " --bits 4 --cluster-gradient max", "mean or sum"},
       }) {
    Result r = minnow(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_NE(r.out.find(c.needle), std::string::npos) << c.args << "\n" << r.out;
    EXPECT_FALSE(fs::exists(path("bad.mnw"))) << c.args;
  }
}

}  // namespace
}  // namespace minnow
