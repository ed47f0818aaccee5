// Embedding, LayerNorm and MultiHeadAttention inside a graph built by GraphBuilder and trained by
// TrainingSession: i64 token ids as the graph input, PyTorch-style initialization and parameter
// names, and a few SGD steps that must fit a small task (the class is the first token).
#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.h"
#include "minnow/builder.h"
#include "train/training_session.h"

namespace minnow {
namespace {

Graph text_classifier(uint64_t seed, int64_t t, int64_t vocab, int64_t d, int64_t classes) {
  GraphBuilder b("text_classifier", seed);
  std::string x = b.input("ids", {kDynamic, t}, DType::kI64);
  x = b.embedding(x, vocab, d, "emb");
  x = b.layer_norm(x, 1e-5, "ln");
  x = b.multi_head_attention(x, 2, "", "mha");
  x = b.flatten(x, 1);
  x = b.linear(x, classes, true, "head");
  b.output(x);
  return b.build();
}

TEST(SequenceTraining, BuilderNamesAndInitializesLikePyTorch) {
  Graph g = text_classifier(1, 4, 50, 8, 3);
  for (const char* name : {"emb.weight", "ln.weight", "ln.bias", "mha.in_proj_weight",
                           "mha.in_proj_bias", "mha.out_proj.weight", "mha.out_proj.bias"}) {
    ASSERT_TRUE(g.initializers.count(name)) << name;
    EXPECT_TRUE(g.initializers.at(name).trainable) << name;
  }
  const Tensor& emb = g.initializers.at("emb.weight").value;
  EXPECT_EQ(emb.shape(), (Shape{50, 8}));
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < emb.numel(); ++i) {
    sum += emb.f32()[i];
    sq += emb.f32()[i] * emb.f32()[i];
  }
  EXPECT_NEAR(sum / emb.numel(), 0.0, 0.15) << "N(0, 1) mean";
  EXPECT_NEAR(sq / emb.numel(), 1.0, 0.2) << "N(0, 1) variance";
  EXPECT_EQ(g.initializers.at("ln.weight").value.f32()[0], 1.0f);
  EXPECT_EQ(g.initializers.at("ln.bias").value.f32()[0], 0.0f);
  // xavier_uniform on [3D, D]: bound sqrt(6 / (D + 3D)).
  const Tensor& in_w = g.initializers.at("mha.in_proj_weight").value;
  EXPECT_EQ(in_w.shape(), (Shape{24, 8}));
  const float bound = std::sqrt(6.0f / 32.0f);
  float max_abs = 0;
  for (int64_t i = 0; i < in_w.numel(); ++i) max_abs = std::max(max_abs, std::abs(in_w.f32()[i]));
  EXPECT_LE(max_abs, bound);
  EXPECT_GT(max_abs, 0.8f * bound);
  for (const char* zero : {"mha.in_proj_bias", "mha.out_proj.bias"}) {
    const Tensor& t = g.initializers.at(zero).value;
    for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(t.f32()[i], 0.0f) << zero;
  }
}

TEST(SequenceTraining, TrainsOnTokenIds) {
  const int64_t n = 16, t = 4, vocab = 12, d = 8, classes = 3;
  Graph g = text_classifier(2, t, vocab, d, classes);
  TrainingSession session(g, SessionOptions{});
  Rng rng(3);
  Tensor ids(DType::kI64, {n, t}), labels(DType::kI64, {n});
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < t; ++j) ids.data<int64_t>()[i * t + j] = rng.below(vocab);
    labels.data<int64_t>()[i] = ids.data<int64_t>()[i * t] % classes;
  }
  const float first = session.evaluate(ids, labels);
  ASSERT_TRUE(std::isfinite(first));
  for (int step = 0; step < 60; ++step) {
    session.train_step(ids, labels, rng);
    for (ParamRef& p : session.params()) {
      for (int64_t i = 0; i < p.value.numel(); ++i) p.value.f32()[i] -= 0.1f * p.grad.f32()[i];
    }
  }
  const float last = session.evaluate(ids, labels);
  EXPECT_LT(last, 0.5f * first) << "loss " << first << " -> " << last;
}

}  // namespace
}  // namespace minnow
