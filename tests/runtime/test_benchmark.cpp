// benchmark_session: percentiles are ordered and consistent with the runs, synthetic inputs
// follow the graph's inputs (batch, dtype), and bad options are errors.
#include <gtest/gtest.h>

#include "minnow/builder.h"
#include "minnow/error.h"
#include "minnow/zoo.h"
#include "runtime/benchmark.h"

namespace minnow {
namespace {

Graph small_mlp() {
  GraphBuilder b("mlp", 1);
  std::string x = b.input("input", {kDynamic, 8});
  b.output(b.linear(b.relu(b.linear(x, 16, true, "fc1")), 3, true, "fc2"));
  return b.build();
}

TEST(Benchmark, PercentilesAreOrderedAndThroughputMatchesTheMean) {
  InferenceSession session(small_mlp());
  BenchOptions o;
  o.batch = 5;
  o.iters = 40;
  o.warmup = 3;
  BenchResult r = benchmark_session(session, o);
  EXPECT_EQ(r.batch, 5);
  EXPECT_EQ(r.iters, 40);
  EXPECT_GT(r.min_ms, 0.0);
  EXPECT_LE(r.min_ms, r.p50_ms);
  EXPECT_LE(r.p50_ms, r.p90_ms);
  EXPECT_LE(r.p90_ms, r.p99_ms);
  EXPECT_GE(r.mean_ms, r.min_ms);
  EXPECT_NEAR(r.samples_per_s, 5 * 1000.0 / r.mean_ms, 1e-6 * r.samples_per_s);
  // The session ran at the requested batch: its output has 5 rows.
  EXPECT_EQ(session.run(synthetic_feeds(session.inputs(), 5, 0))[0].shape(), (Shape{5, 3}));
}

TEST(Benchmark, ProfilingTimesEveryNodeOfTheOptimizedGraphOncePerRun) {
  InferenceSession session(small_mlp());
  std::map<std::string, Tensor> feeds = synthetic_feeds(session.inputs(), 4, 0);
  session.run(feeds);
  EXPECT_TRUE(session.node_times().empty());  // off by default
  session.set_profiling(true);
  for (int i = 0; i < 3; ++i) session.run(feeds);
  session.set_profiling(false);
  session.run(feeds);  // not counted
  std::vector<InferenceSession::NodeTime> times = session.node_times();
  // fc1's ReLU is fused into it: two Linear nodes remain, in execution order.
  ASSERT_EQ(times.size(), 2u);
  EXPECT_EQ(times[0].node, "fc1");
  EXPECT_EQ(times[1].node, "fc2");
  for (const auto& t : times) {
    EXPECT_EQ(t.op, "Linear");
    EXPECT_EQ(t.calls, 3);
    EXPECT_GT(t.total_ms, 0.0);
  }
}

TEST(Benchmark, SyntheticFeedsFollowTheInputs) {
  zoo::ZooOptions zo;
  zo.input_shape = {12};
  zo.vocab_size = 50;
  zo.classes = 2;
  Graph g = zoo::build("gru_classifier", zo);  // i64 token ids [N, 12] and lengths [N]
  std::map<std::string, Tensor> feeds = synthetic_feeds(g.inputs, 3, 7);
  ASSERT_EQ(feeds.size(), 2u);
  EXPECT_EQ(feeds.at(g.inputs[0].name).shape(), (Shape{3, 12}));
  EXPECT_EQ(feeds.at(g.inputs[1].name).dtype(), DType::kI64);
  EXPECT_EQ(feeds.at(g.inputs[1].name).shape(), (Shape{3}));
  InferenceSession session(g);
  EXPECT_EQ(session.run(feeds)[0].shape(), (Shape{3, 2}));
  Tensor f = synthetic_feeds(small_mlp().inputs, 2, 7).at("input");
  for (int64_t i = 0; i < f.numel(); ++i) {
    EXPECT_GE(f.f32()[i], -1.0f);
    EXPECT_LT(f.f32()[i], 1.0f);
  }
}

TEST(Benchmark, BadOptionsAreErrors) {
  InferenceSession session(small_mlp());
  for (auto [batch, warmup, iters] :
       {std::tuple{0, 1, 1}, std::tuple{1, -1, 1}, std::tuple{1, 1, 0}}) {
    BenchOptions o;
    o.batch = batch;
    o.warmup = warmup;
    o.iters = iters;
    EXPECT_THROW(benchmark_session(session, o), Error);
  }
  EXPECT_GT(peak_rss_bytes(), 0);
}

}  // namespace
}  // namespace minnow
