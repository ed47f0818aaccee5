// Text zoo models: token-id and lengths inputs, parameter counts checked by hand, a short
// training run that learns a length-sensitive task, and errors for image-shaped inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/rng.h"
#include "minnow/error.h"
#include "minnow/zoo.h"
#include "train/optimizer.h"
#include "train/training_session.h"

namespace minnow {
namespace {

const std::vector<std::string> kTextModels = {"lstm_classifier", "gru_classifier",
                                              "transformer_classifier"};

zoo::ZooOptions text_options(int64_t max_len, int64_t vocab) {
  zoo::ZooOptions o;
  o.input_shape = {max_len};
  o.vocab_size = vocab;
  o.classes = 2;
  return o;
}

TEST(TextZoo, ParameterCountsMatchHandCounts) {
  const int64_t v = 100, t = 16, e = 64, h = 64, classes = 2;
  // Embedding + bidirectional recurrent layer (G gates: W_ih, W_hh, b_ih, b_hh per direction)
  // + linear on the two final states and the two directions' time means.
  auto recurrent = [&](int64_t gates) {
    return v * e + 2 * gates * h * (e + h + 2) + (4 * h + 1) * classes;
  };
  EXPECT_EQ(zoo::build("lstm_classifier", text_options(t, v)).num_params(), recurrent(4));
  EXPECT_EQ(zoo::build("gru_classifier", text_options(t, v)).num_params(), recurrent(3));
  // Embedding + positions + 2 x (attention 4D^2+4D, 2 LayerNorms 4D, FF 2*D*128+128+D) + fc.
  const int64_t layer = 4 * e * e + 4 * e + 4 * e + 2 * e * 128 + 128 + e;
  EXPECT_EQ(zoo::build("transformer_classifier", text_options(t, v)).num_params(),
            v * e + t * e + 2 * layer + (e + 1) * classes);
}

// Class = whether the sequence is longer than 4 tokens; tokens are random. The models must
// read the lengths input (or the padding) to learn it.
TEST(TextZoo, ShortTrainingLearnsFromLengths) {
  const int64_t batch = 16, t = 8, v = 20;
  Rng rng(7);
  Tensor ids(DType::kI64, {batch, t}), lengths(DType::kI64, {batch}), labels(DType::kI64, {batch});
  for (int64_t n = 0; n < batch; ++n) {
    const int64_t len = 1 + static_cast<int64_t>(rng.below(t));
    lengths.data<int64_t>()[n] = len;
    labels.data<int64_t>()[n] = len > 4 ? 1 : 0;
    for (int64_t i = 0; i < t; ++i) {
      ids.data<int64_t>()[n * t + i] = i < len ? 2 + static_cast<int64_t>(rng.below(v - 2)) : 0;
    }
  }
  for (const std::string& name : kTextModels) {
    Graph g = zoo::build(name, text_options(t, v));
    ASSERT_EQ(g.inputs.size(), 2u) << name;
    TrainingSession session(g, SessionOptions{});
    ASSERT_TRUE(session.takes_lengths()) << name;
    OptimizerOptions oo;
    oo.kind = "adam";
    auto opt = make_optimizer(oo, session.params());
    Rng step_rng(0);
    float first = 0, last = 0;
    for (int step = 0; step < 40; ++step) {
      last = session.train_step(ids, labels, step_rng, lengths);
      ASSERT_TRUE(std::isfinite(last)) << name << " step " << step;
      if (step == 0) first = last;
      opt->step(session.params(), 3e-3);
    }
    EXPECT_LT(last, 0.5f * first) << name << ": first " << first << " last " << last;
    EXPECT_THROW(session.train_step(ids, labels, step_rng), Error) << name << " without lengths";
  }
}

TEST(TextZoo, ImageShapesAndTinyVocabulariesAreErrors) {
  for (const std::string& name : kTextModels) {
    zoo::ZooOptions image;
    EXPECT_THROW(zoo::build(name, image), Error) << name;
    EXPECT_THROW(zoo::build(name, text_options(16, 2)), Error) << name;
  }
}

}  // namespace
}  // namespace minnow
