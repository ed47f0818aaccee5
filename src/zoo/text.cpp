// Text classifiers over token ids: "input" i64 [N, T] (PAD = 0 after each sequence's end) and
// "lengths" i64 [N]. Sizes follow what small-model text work uses (embedding and hidden 64);
// each is a PyTorch model in miniature:
//   lstm_classifier / gru_classifier: nn.Embedding -> bidirectional nn.LSTM / nn.GRU over the
//     packed sequence -> [final hidden states, mean of the outputs over time] [N, 256] ->
//     nn.Linear. The time mean (outputs are zero past each length, so it is sum / max_len)
//     keeps evidence from the middle of long messages that the final states forget.
//   transformer_classifier: nn.Embedding + learned positional embedding [1, T, 64] ->
//     2 x nn.TransformerEncoderLayer(d_model 64, 4 heads, FF 128, ReLU, post-norm, dropout 0)
//     with key padding mask -> mean over the T positions -> nn.Linear.
#include <cmath>

#include "core/rng.h"
#include "minnow/builder.h"
#include "minnow/error.h"
#include "zoo/builders.h"

namespace minnow::zoo {
namespace {

constexpr int64_t kEmbedDim = 64;
constexpr int64_t kHidden = 64;
constexpr int64_t kHeads = 4;
constexpr int64_t kFeedForward = 128;
constexpr int64_t kEncoderLayers = 2;

// Declares "input" [N, T] and "lengths" [N]; returns T.
int64_t text_inputs(GraphBuilder& b, const ZooOptions& opt, const std::string& model) {
  if (opt.input_shape.size() != 1 || opt.input_shape[0] < 1) {
    throw Error(model +
                " takes token ids [max_len] (text data such as --data spam), got input "
                "shape " +
                shape_str(opt.input_shape));
  }
  if (opt.vocab_size < 3) {
    throw Error(model + " needs a vocabulary of at least 3 tokens (PAD, OOV, one word), got " +
                std::to_string(opt.vocab_size));
  }
  b.input("input", {kDynamic, opt.input_shape[0]}, DType::kI64);
  b.input("lengths", {kDynamic}, DType::kI64);
  return opt.input_shape[0];
}

// [N, T, D] -> [N, D]: the mean over the T positions.
std::string time_mean(GraphBuilder& b, const std::string& x, int64_t t, int64_t d,
                      const std::string& name) {
  Attrs perm;
  perm.set("perm", std::vector<int64_t>{0, 2, 1});
  std::string y = b.op(OpKind::kTranspose, {x}, std::move(perm), name + ".transpose");
  Attrs shape;
  shape.set("shape", std::vector<int64_t>{0, d, t, 1});
  y = b.op(OpKind::kReshape, {y}, std::move(shape), name + ".reshape");
  return b.flatten(b.global_avg_pool(y, name), 1, name + ".flatten");
}

void classifier_head(GraphBuilder& b, const ZooOptions& opt, std::string x) {
  if (opt.dropout > 0) x = b.dropout(x, opt.dropout, "dropout");
  b.output(b.linear(x, opt.classes, true, "logits"));
}

Graph recurrent_classifier(const ZooOptions& opt, const std::string& model, bool lstm) {
  GraphBuilder b(model, opt.seed);
  const int64_t t = text_inputs(b, opt, model);
  std::string x = b.embedding("input", opt.vocab_size, kEmbedDim, "embedding");
  std::vector<std::string> outs = lstm ? b.lstm(x, kHidden, true, "lengths", "lstm")
                                       : b.gru(x, kHidden, true, "lengths", "gru");
  Attrs axis;
  axis.set("axis", int64_t{1});
  std::string features =
      b.op(OpKind::kConcat, {outs[1], time_mean(b, outs[0], t, 2 * kHidden, "pool")},
           std::move(axis), "features");
  classifier_head(b, opt, features);
  return b.build();
}

// y = LayerNorm(x + f(x)): PyTorch's default (norm_first=False) encoder sublayer wiring.
std::string add_norm(GraphBuilder& b, const std::string& x, const std::string& fx,
                     const std::string& name) {
  return b.layer_norm(b.op(OpKind::kAdd, {x, fx}, {}, name + ".add"), 1e-5, name);
}

}  // namespace

Graph build_lstm_classifier(const ZooOptions& opt) {
  return recurrent_classifier(opt, "lstm_classifier", true);
}

Graph build_gru_classifier(const ZooOptions& opt) {
  return recurrent_classifier(opt, "gru_classifier", false);
}

Graph build_transformer_classifier(const ZooOptions& opt) {
  const std::string model = "transformer_classifier";
  GraphBuilder b(model, opt.seed);
  const int64_t t = text_inputs(b, opt, model);
  std::string x = b.embedding("input", opt.vocab_size, kEmbedDim, "embedding");
  // Learned positions, N(0, 0.02) as in BERT/GPT-style models.
  Tensor pos(DType::kF32, {1, t, kEmbedDim});
  for (int64_t i = 0; i < pos.numel(); ++i) pos.f32()[i] = 0.02f * b.rng().normal();
  b.parameter("position.weight", std::move(pos), true);
  x = b.op(OpKind::kAdd, {x, "position.weight"}, {}, "position");
  for (int64_t l = 0; l < kEncoderLayers; ++l) {
    const std::string p = "encoder" + std::to_string(l);
    std::string attn = b.multi_head_attention(x, kHeads, "lengths", p + ".self_attn");
    x = add_norm(b, x, attn, p + ".norm1");
    std::string ff = b.relu(b.linear(x, kFeedForward, true, p + ".linear1"));
    ff = b.linear(ff, kEmbedDim, true, p + ".linear2");
    x = add_norm(b, x, ff, p + ".norm2");
  }
  classifier_head(b, opt, time_mean(b, x, t, kEmbedDim, "pool"));
  return b.build();
}

}  // namespace minnow::zoo
