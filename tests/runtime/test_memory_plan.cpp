// The static memory plan: values alive at the same time never share bytes (including a step's
// inputs and its outputs), a chain reuses memory, and every zoo network gives the same outputs
// with the plan (and the graph rewrites) as without, also on a second run over a dirty arena.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "core/rng.h"
#include "minnow/builder.h"
#include "minnow/zoo.h"
#include "ops/shape_util.h"
#include "passes/lowered_zoo.h"
#include "runtime/inference_session.h"
#include "runtime/memory_plan.h"

namespace minnow {
namespace {

void expect_no_live_overlap(const std::vector<PlannedValue>& v, const MemoryPlan& p) {
  auto rounded = [](size_t b) { return (std::max<size_t>(b, 1) + 63) / 64 * 64; };
  for (size_t a = 0; a < v.size(); ++a) {
    EXPECT_EQ(p.offsets[a] % 64, 0u);
    EXPECT_LE(p.offsets[a] + v[a].bytes, p.arena_bytes);
    for (size_t b = a + 1; b < v.size(); ++b) {
      const bool alive_together = v[a].first <= v[b].last && v[b].first <= v[a].last;
      const bool overlap = p.offsets[a] < p.offsets[b] + rounded(v[b].bytes) &&
                           p.offsets[b] < p.offsets[a] + rounded(v[a].bytes);
      EXPECT_FALSE(alive_together && overlap) << a << " and " << b;
    }
  }
}

TEST(MemoryPlan, ChainReusesTwoBuffers) {
  std::vector<PlannedValue> chain;
  for (int i = 0; i < 10; ++i) chain.push_back({1000, i, i + 1});  // written at i, read at i+1
  MemoryPlan p = plan_memory(chain);
  expect_no_live_overlap(chain, p);
  EXPECT_EQ(p.arena_bytes, 2 * 1024u);
  EXPECT_EQ(p.unshared_bytes, 10 * 1024u);
}

// In place: an alias takes its root's bytes; the block lives as long as its longest member and
// other values still never overlap it.
TEST(MemoryPlan, AliasesShareTheirRootsBytes) {
  std::vector<PlannedValue> v = {{1000, 0, 1}, {1000, 1, 2, 0}, {1000, 2, 4, 1}, {500, 3, 4}};
  MemoryPlan p = plan_memory(v);
  EXPECT_EQ(p.offsets[1], p.offsets[0]);
  EXPECT_EQ(p.offsets[2], p.offsets[0]);
  // Value 3 is alive with value 2 (steps 3..4): elsewhere.
  EXPECT_NE(p.offsets[3], p.offsets[0]);
  EXPECT_EQ(p.arena_bytes, 1024u + 512u);
  std::vector<PlannedValue> merged = {{1000, 0, 4}, {500, 3, 4}};
  expect_no_live_overlap(merged, plan_memory(merged));
}

TEST(MemoryPlan, RandomLifetimesNeverOverlap) {
  Rng rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<PlannedValue> v;
    const int n = 1 + static_cast<int>(rng.below(40));
    for (int i = 0; i < n; ++i) {
      const int first = static_cast<int>(rng.below(30));
      v.push_back({1 + rng.below(5000), first, first + static_cast<int>(rng.below(8))});
    }
    MemoryPlan p = plan_memory(v);
    expect_no_live_overlap(v, p);
    EXPECT_LE(p.arena_bytes, p.unshared_bytes);
  }
}

// Feeds for a zoo graph: f32 inputs random, i64 token ids in the vocabulary, lengths <= T.
std::map<std::string, Tensor> feeds_for(const Graph& g, int64_t batch, uint64_t seed) {
  Rng rng(seed);
  std::map<std::string, Tensor> feeds;
  for (const ValueInfo& v : g.inputs) {
    Shape s = v.shape;
    s[0] = batch;
    Tensor t(v.dtype, s);
    if (v.dtype == DType::kF32) {
      for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = rng.uniform(-1, 1);
    } else if (s.size() == 1) {  // lengths
      for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = 1 + rng.below(8);
    } else {  // token ids
      for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = rng.below(30);
    }
    feeds.emplace(v.name, t);
  }
  return feeds;
}

TEST(MemoryPlan, ZooNetworksGiveTheSameOutputs) {
  for (const zoo::ZooEntry& e : zoo::entries()) {
    SCOPED_TRACE(e.name);
    zoo::ZooOptions o;
    const bool text = e.name.find("classifier") != std::string::npos;
    o.input_shape = text ? Shape{8} : Shape{1, 16, 16};
    o.vocab_size = 30;
    Graph g = zoo::build(e.name, o);
    InferenceSession planned(g);
    InferenceSession plain(g, KernelChoice::kFast, /*optimize=*/false);
    for (uint64_t seed : {1, 2}) {  // the second run starts from a dirty arena
      const auto feeds = feeds_for(g, 3, seed);
      const Tensor want = plain.run(feeds)[0].clone();
      const Tensor& got = planned.run(feeds)[0];
      ASSERT_EQ(got.shape(), want.shape());
      for (int64_t i = 0; i < want.numel(); ++i) {
        ASSERT_NEAR(got.f32()[i], want.f32()[i], 1e-4 + 1e-4 * std::abs(want.f32()[i])) << i;
      }
    }
    EXPECT_GT(planned.arena_bytes(), 0u);
    EXPECT_LT(planned.arena_bytes(), planned.unshared_bytes());
  }
}

// Large batches of per-sample networks run in micro-batches, or with several threads in pieces
// on parallel lanes: the same outputs as the samples run one batch at a time, including a
// remainder piece, twice (the piece buffers are reused); graphs with recurrent ops never split.
TEST(MicroBatch, PiecesGiveTheSameOutputs) {
  zoo::ZooOptions o;
  o.input_shape = {1, 28, 28};
  const Graph g = zoo::build("mobilenet_v2", o);
  InferenceSession split(g);
  ASSERT_GT(split.micro_batch(), 0);
  ASSERT_LT(split.micro_batch(), 64);
  const int64_t batch = 2 * split.micro_batch() + 5;
  const std::map<std::string, Tensor> feeds = feeds_for(g, batch, 11);
  InferenceSession whole(g, KernelChoice::kFast, /*optimize=*/false);
  const Tensor want = whole.run(feeds)[0].clone();
  for (int lanes : {1, 2}) {
    omp_set_num_threads(lanes);
    const int64_t piece = split.piece_size(batch, lanes);
    ASSERT_LT(piece, batch);
    ASSERT_NE(batch % piece, 0) << "a remainder piece";
    for (int round = 0; round < 2; ++round) {
      const Tensor& got = split.run(feeds)[0];
      ASSERT_EQ(got.shape(), want.shape());
      for (int64_t i = 0; i < want.numel(); ++i) {
        ASSERT_NEAR(got.f32()[i], want.f32()[i], 1e-4 * (1 + std::fabs(want.f32()[i])))
            << lanes << " lanes, " << i;
      }
    }
  }
  omp_set_num_threads(omp_get_num_procs());
  zoo::ZooOptions text;
  text.input_shape = {16};
  text.vocab_size = 30;
  InferenceSession lstm(zoo::build("lstm_classifier", text));
  EXPECT_EQ(lstm.micro_batch(), 0);
  EXPECT_EQ(lstm.piece_size(256, 2), 256);
  zoo::ZooOptions small;
  small.input_shape = {1, 28, 28};
  InferenceSession lenet(zoo::build("lenet5", small));
  EXPECT_GE(lenet.micro_batch(), 256) << "small activations: no split at usual batch sizes";
  EXPECT_LT(lenet.piece_size(256, 2), 256) << "but pieces on two lanes";
  EXPECT_EQ(InferenceSession(zoo::build("lenet300", small)).piece_size(256, 2), 256)
      << "an MLP's weights serve one multiply-add per sample: no lanes";
}

// Parallel lanes run quantized graphs too: the same logits as the unsplit run on one thread (the
// int8 layers' integers are exact; the float classifier may round differently per batch size).
TEST(MicroBatch, LanesRunInt8GraphsExactly) {
  const Graph q = testing::lowered_model("resnet8", 60);
  const int64_t batch = 37;
  const std::map<std::string, Tensor> feeds = {
      {q.inputs[0].name, testing::random_images(batch, {1, 28, 28}, 61)}};
  InferenceSession lanes(q);
  ASSERT_LT(lanes.piece_size(batch, 2), batch);
  omp_set_num_threads(2);
  const Tensor got = lanes.run(feeds)[0].clone();
  omp_set_num_threads(1);
  InferenceSession one(q);
  const Tensor& want = one.run(feeds)[0];
  omp_set_num_threads(omp_get_num_procs());
  ASSERT_EQ(got.shape(), want.shape());
  for (int64_t i = 0; i < want.numel(); ++i) {
    ASSERT_NEAR(got.f32()[i], want.f32()[i], 1e-5 * (1 + std::fabs(want.f32()[i]))) << i;
  }
}

// A Transpose that moves only size-1 dims relabels its input (channels_last's NCHW <-> NHWC of a
// 1-channel image or of pooled features): the session runs it in the input's buffer, and the
// results are those of a real transpose; one that moves data still copies.
TEST(MemoryPlan, RelabelingTransposeRunsInPlace) {
  EXPECT_TRUE(ops::transpose_keeps_layout({2, 1, 4, 4}, {0, 2, 3, 1}));
  EXPECT_TRUE(ops::transpose_keeps_layout({2, 8, 1, 1}, {0, 2, 3, 1}));
  EXPECT_FALSE(ops::transpose_keeps_layout({2, 3, 4, 4}, {0, 2, 3, 1}));
  EXPECT_FALSE(ops::transpose_keeps_layout({1, 2, 3}, {0, 2, 1}));
  for (const Shape& shape : {Shape{kDynamic, 1, 4, 4}, Shape{kDynamic, 3, 4, 4}}) {
    GraphBuilder b("t", 1);
    const std::string x = b.input("x", shape);
    Attrs perm;
    perm.set("perm", std::vector<int64_t>{0, 2, 3, 1});
    b.output(b.relu(b.op(OpKind::kTranspose, {b.relu(x)}, perm)));
    const Graph g = b.build();
    Rng rng(3);
    Tensor in(DType::kF32, {2, shape[1], 4, 4});
    for (int64_t i = 0; i < in.numel(); ++i) in.f32()[i] = rng.uniform(-1, 1);
    InferenceSession optimized(g), plain(g, KernelChoice::kReference, /*optimize=*/false);
    const Tensor want = plain.run({{"x", in}})[0].clone();
    for (int round = 0; round < 2; ++round) {
      const Tensor& got = optimized.run({{"x", in}})[0];
      ASSERT_EQ(got.shape(), want.shape());
      for (int64_t i = 0; i < want.numel(); ++i) {
        ASSERT_NEAR(got.f32()[i], want.f32()[i], 1e-5 * (1 + std::fabs(want.f32()[i]))) << i;
      }
    }
  }
}

}  // namespace
}  // namespace minnow
