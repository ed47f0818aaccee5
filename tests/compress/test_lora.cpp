// LoRA (passes/lora.h) and the transfer-learning helpers (compress/finetune.h): an adapter
// starts as the identity change, only adapters train, merging gives the same function in the
// original architecture (Linear and strided/padded 1x1 Conv2d), a LoRA model survives .mnw, and
// the head / freezing helpers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "compress/finetune.h"
#include "core/rng.h"
#include "io/mnw.h"
#include "minnow/builder.h"
#include "minnow/error.h"
#include "minnow/zoo.h"
#include "passes/lora.h"
#include "runtime/inference_session.h"
#include "train/trainer.h"

namespace minnow {
namespace {

Graph mlp() {
  zoo::ZooOptions o;
  o.input_shape = {1, 6, 6};
  o.classes = 4;
  o.hidden = {12, 7};
  o.seed = 5;
  return zoo::build("mlp", o);
}

// 1x1 convs (one strided and padded), a 3x3 conv (not eligible), a grouped 1x1 (not eligible).
Graph convnet() {
  GraphBuilder b("convnet", 3);
  std::string x = b.input("input", {kDynamic, 2, 7, 7});
  ConvOptions s2;
  s2.stride = 2;
  s2.pad = 1;
  x = b.relu(b.conv2d(x, 6, 1, s2, "pw1"));
  ConvOptions p1;
  p1.pad = 1;
  x = b.conv2d(x, 6, 3, p1, "k3");
  ConvOptions g2;
  g2.groups = 2;
  x = b.conv2d(x, 6, 1, g2, "grouped");
  x = b.conv2d(x, 5, 1, {}, "pw2");
  x = b.flatten(b.global_avg_pool(x));
  b.output(b.linear(x, 3, true, "fc"));
  return b.build();
}

Tensor random_input(Shape s, uint64_t seed) {
  Tensor t(DType::kF32, std::move(s));
  Rng rng(seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = rng.uniform(-1, 1);
  return t;
}

Tensor run(const Graph& g, const Tensor& x) {
  InferenceSession s(g, KernelChoice::kReference, false);
  return s.run({{"input", x}})[0].clone();
}

void expect_close(const Tensor& a, const Tensor& b, double tol, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  for (int64_t i = 0; i < a.numel(); ++i) {
    ASSERT_NEAR(a.f32()[i], b.f32()[i], tol) << what << " at " << i;
  }
}

// What training would do to B: make it non-zero so that the adapter changes the function.
void randomize_adapters(Graph& g, uint64_t seed) {
  Rng rng(seed);
  for (auto& [name, init] : g.initializers) {
    if (name.size() > 7 && name.compare(name.size() - 7, 7, ".lora_B") == 0) {
      for (int64_t i = 0; i < init.value.numel(); ++i) init.value.f32()[i] = rng.uniform(-1, 1);
    }
  }
}

TEST(Lora, StartsAsTheSameFunctionAndTrainsOnlyAdapters) {
  Graph g = mlp();
  const Tensor x = random_input({3, 1, 6, 6}, 1);
  const Tensor before = run(g, x);
  LoraOptions o;
  o.rank = 2;
  LoraResult r = add_lora(g, o);
  EXPECT_EQ(r.adapted.size(), 3u);  // every Linear of the mlp
  int64_t expected = 0;
  for (const std::string& n : r.adapted) {
    const Tensor& w = g.initializers.at(g.find_node(n)->inputs[1]).value;
    expected += 2 * (w.dim(0) + w.dim(1));
    EXPECT_FALSE(g.initializers.at(g.find_node(n)->inputs[1]).trainable) << n;
  }
  EXPECT_EQ(r.adapter_params, expected);
  EXPECT_EQ(g.num_params(true), expected);  // only A and B are trainable
  expect_close(run(g, x), before, 1e-6, "B = 0 adds nothing");
  // Targets select by glob; the head can be excluded by name.
  Graph h = mlp();
  LoraOptions some;
  some.targets = {"fc*"};
  some.exclude = {compress::find_head(h)};
  EXPECT_EQ(add_lora(h, some).adapted.size(), 2u);
}

TEST(Lora, MergeGivesTheSameFunctionInTheOriginalArchitecture) {
  for (const bool conv : {false, true}) {
    SCOPED_TRACE(conv ? "convnet" : "mlp");
    Graph original = conv ? convnet() : mlp();
    Graph g = original;
    LoraOptions o;
    o.rank = 3;
    o.alpha = 6;
    LoraResult r = add_lora(g, o);
    if (conv) {
      EXPECT_EQ(r.adapted, (std::vector<std::string>{"pw1", "pw2", "fc"}));
      EXPECT_EQ(r.skipped.size(), 2u);  // k3 (3x3) and grouped
    }
    randomize_adapters(g, 7);
    const Tensor x = random_input(conv ? Shape{2, 2, 7, 7} : Shape{2, 1, 6, 6}, 2);
    const Tensor adapted = run(g, x);
    EXPECT_GT(std::abs(adapted.f32()[0] - run(original, x).f32()[0]), 1e-4);
    EXPECT_EQ(merge_lora(g), static_cast<int>(r.adapted.size()));
    expect_close(run(g, x), adapted, 1e-4, "merged");
    EXPECT_EQ(g.nodes.size(), original.nodes.size());
    EXPECT_EQ(g.initializers.size(), original.initializers.size());
    for (const auto& [name, init] : original.initializers) {
      EXPECT_EQ(g.initializers.at(name).value.shape(), init.value.shape()) << name;
      EXPECT_EQ(g.initializers.at(name).trainable, init.trainable) << name;
    }
    EXPECT_EQ(merge_lora(g), 0);  // nothing left to merge
  }
}

TEST(Lora, SavesAndLoadsAsANormalModel) {
  Graph g = mlp();
  add_lora(g, LoraOptions{});
  randomize_adapters(g, 3);
  const std::string path =
      (std::filesystem::temp_directory_path() /
       ("lora_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + ".mnw"))
          .string();
  io::MnwContents c;
  c.graph = g;
  io::save_mnw(path, c);
  io::MnwContents back = io::load_mnw(path);
  std::filesystem::remove(path);
  const Tensor x = random_input({2, 1, 6, 6}, 4);
  expect_close(run(back.graph, x), run(g, x), 1e-6, "reloaded");
  EXPECT_EQ(back.graph.num_params(true), g.num_params(true));
  EXPECT_EQ(merge_lora(back.graph), 3);
  expect_close(run(back.graph, x), run(g, x), 1e-4, "reloaded and merged");
}

TEST(Lora, TrainingChangesOnlyTheAdapters) {
  Graph g = mlp();
  const std::string head = compress::find_head(g);
  LoraOptions o;
  o.exclude = {head};
  add_lora(g, o);
  Graph before = g;
  for (auto& [name, init] : before.initializers) init.value = init.value.clone();  // deep copy
  data::Dataset d;
  d.x = random_input({64, 1, 6, 6}, 8);
  d.y = Tensor(DType::kI64, {64});
  for (int64_t i = 0; i < 64; ++i) d.y.data<int64_t>()[i] = i % 4;
  d.num_classes = 4;
  TrainConfig cfg;
  cfg.epochs = 2;
  cfg.batch = 16;
  cfg.lr = 1e-2;
  cfg.optimizer.kind = "adam";
  train_model(g, d, data::Normalization{{0.0f}, {1.0f}}, cfg);
  for (const auto& [name, init] : g.initializers) {
    const Tensor& old = before.initializers.at(name).value;
    const bool same = std::memcmp(old.raw(), init.value.raw(), old.nbytes()) == 0;
    EXPECT_EQ(same, !init.trainable) << name;
  }
}

TEST(Lora, BadOptionsAndGraphsAreErrors) {
  Graph g = mlp();
  LoraOptions o;
  o.rank = 0;
  EXPECT_THROW(add_lora(g, o), Error);
  o.rank = 2;
  o.alpha = 0;
  EXPECT_THROW(add_lora(g, o), Error);
  o.alpha = 4;
  o.targets = {"nothing*"};
  EXPECT_THROW(add_lora(g, o), Error);
  o.targets = {};
  add_lora(g, o);
  EXPECT_THROW(add_lora(g, o), Error);  // adapters twice
  // A broken adapter is named, not merged half-way.
  Graph broken = g;
  for (Node& n : broken.nodes) {
    if (n.name == "fc1.lora_scale") n.inputs[0] = "fc1.lora_a";
  }
  EXPECT_THROW(merge_lora(broken), Error);
}

TEST(Finetune, HeadReplacementAndFreezing) {
  Graph g = mlp();
  const std::string head = compress::find_head(g);
  const Node* last = g.producer(g.outputs[0].name);
  ASSERT_NE(last, nullptr);
  EXPECT_EQ(g.find_node(head)->op, OpKind::kLinear);
  compress::replace_head(g, 9, 1);
  EXPECT_EQ(g.outputs[0].shape.back(), 9);
  EXPECT_EQ(run(g, random_input({2, 1, 6, 6}, 3)).shape(), (Shape{2, 9}));
  const std::vector<std::string> frozen = compress::freeze_nodes(g, {"fc1", "fc2"});
  EXPECT_EQ(frozen.size(), 4u);  // two weights, two biases
  for (const std::string& f : frozen) EXPECT_FALSE(g.initializers.at(f).trainable) << f;
  EXPECT_TRUE(g.initializers.at(g.find_node(head)->inputs[1]).trainable);
  EXPECT_THROW(compress::freeze_nodes(g, {"nosuch*"}), Error);
  EXPECT_THROW(compress::replace_head(g, 0, 1), Error);
  // A model whose output does not come from a Linear has no head.
  GraphBuilder b("pool_only", 1);
  std::string x = b.input("input", {kDynamic, 3, 4, 4});
  b.output(b.flatten(b.global_avg_pool(x)));
  EXPECT_THROW(compress::find_head(b.build()), Error);
}

}  // namespace
}  // namespace minnow
