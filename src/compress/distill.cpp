#include "compress/distill.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "core/rng.h"
#include "data/permutation.h"
#include "minnow/error.h"
#include "runtime/inference_session.h"

namespace minnow::compress {
namespace {

// Feature maps are cached only while they stay small next to the dataset itself.
constexpr int64_t kMaxFeatureCacheBytes = int64_t{512} << 20;

void ensure_shape(Tensor& t, const Shape& shape) {
  if (!t.defined() || t.shape() != shape || t.dtype() != DType::kF32)
    t = Tensor(DType::kF32, shape);
}

Shape with_batch(int64_t n, const Shape& per_sample) {
  Shape s = {n};
  s.insert(s.end(), per_sample.begin(), per_sample.end());
  return s;
}

}  // namespace

std::string resolve_value(const Graph& g, const std::string& name, const std::string& what) {
  if (const Node* n = g.find_node(name)) return n->outputs.at(0);
  for (const ValueInfo& v : g.inputs) {
    if (v.name == name) return name;
  }
  if (g.producer(name)) return name;
  throw Error(what + ": model '" + g.name + "' has no node or value named '" + name + "'");
}

Teacher::Teacher(const Graph& teacher, const std::string& feature_value, int64_t train_size)
    : train_size_(train_size) {
  if (teacher.outputs.size() != 1) {
    throw Error("--teacher: the teacher must have one output (its logits); '" + teacher.name +
                "' has " + std::to_string(teacher.outputs.size()));
  }
  if (teacher.inputs.empty() || teacher.inputs.size() > 2) {
    throw Error("--teacher: the teacher must take one input (or an input and lengths)");
  }
  Graph g = teacher;
  auto info = g.infer_shapes();
  const ValueInfo& logits = info.at(g.outputs[0].name);
  if (logits.shape.size() != 2 || logits.shape[1] < 1 || logits.dtype != DType::kF32) {
    throw Error("--teacher: output '" + logits.name + "' has shape " + shape_str(logits.shape) +
                " " + std::string(dtype_name(logits.dtype)) + ", expected f32 logits [N, classes]");
  }
  classes_ = logits.shape[1];
  if (!feature_value.empty()) {
    const ValueInfo& f = info.at(feature_value);
    if (f.shape.empty() || f.shape[0] != kDynamic || f.dtype != DType::kF32) {
      throw Error("--feature-map: teacher value '" + feature_value + "' has shape " +
                  shape_str(f.shape) + ", expected an f32 batch of features [N, ...]");
    }
    feature_shape_.assign(f.shape.begin() + 1, f.shape.end());
    feature_size_ = shape_numel(feature_shape_);
    g.outputs.push_back(f);
    cache_features_ = feature_size_ * train_size_ * 4 <= kMaxFeatureCacheBytes;
  }
  input_name_ = g.inputs[0].name;
  if (g.inputs.size() == 2) lengths_name_ = g.inputs[1].name;
  session_ = std::make_unique<InferenceSession>(std::move(g));
  logit_cache_.resize(static_cast<size_t>(train_size_ * classes_));
  if (cache_features_) feature_cache_.resize(static_cast<size_t>(train_size_ * feature_size_));
  cached_.assign(static_cast<size_t>(train_size_), 0);
}

Teacher::~Teacher() = default;

void Teacher::fill(const TeacherBatch& tb, Tensor& logits, Tensor& feature) {
  fill_outputs(tb, logits, feature);
  const data::Batch& b = tb.batch;
  if (b.y.defined() && b.y.dtype() == DType::kI64) {
    for (int64_t i = 0; i < b.size; ++i) {
      const float* row = logits.f32() + i * classes_;
      agree_ += (std::max_element(row, row + classes_) - row) == b.y.data<int64_t>()[i];
    }
    served_ += b.size;
  }
}

void Teacher::fill_outputs(const TeacherBatch& tb, Tensor& logits, Tensor& feature) {
  const data::Batch& b = tb.batch;
  const int64_t n = b.size;
  ensure_shape(logits, {n, classes_});
  if (feature_size_ > 0) ensure_shape(feature, with_batch(n, feature_shape_));
  const bool cacheable = !tb.augmented && (feature_size_ == 0 || cache_features_);
  if (cacheable) {
    bool all = true;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t k = tb.indices[i];
      if (k < 0 || k >= train_size_) {
        throw Error("distillation: sample index " + std::to_string(k) +
                    " outside the training set");
      }
      all = all && cached_[k];
    }
    if (all) {
      for (int64_t i = 0; i < n; ++i) {
        const int64_t k = tb.indices[i];
        std::memcpy(logits.f32() + i * classes_, logit_cache_.data() + k * classes_,
                    sizeof(float) * classes_);
        if (feature_size_ > 0) {
          std::memcpy(feature.f32() + i * feature_size_, feature_cache_.data() + k * feature_size_,
                      sizeof(float) * feature_size_);
        }
      }
      return;
    }
  }
  std::map<std::string, Tensor> feeds = {{input_name_, b.x}};
  if (!lengths_name_.empty()) feeds[lengths_name_] = b.lengths;
  const std::vector<Tensor>& out = session_->run(feeds);
  teacher_samples_ += n;
  std::memcpy(logits.f32(), out[0].f32(), sizeof(float) * n * classes_);
  if (feature_size_ > 0) std::memcpy(feature.f32(), out[1].f32(), sizeof(float) * out[1].numel());
  if (!cacheable) return;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = tb.indices[i];
    std::memcpy(logit_cache_.data() + k * classes_, logits.f32() + i * classes_,
                sizeof(float) * classes_);
    if (feature_size_ > 0) {
      std::memcpy(feature_cache_.data() + k * feature_size_, feature.f32() + i * feature_size_,
                  sizeof(float) * feature_size_);
    }
    cached_[k] = 1;
  }
}

data::Dataset class_balanced_subset(const data::Dataset& d, int64_t n, uint64_t seed) {
  const int64_t size = d.size();
  if (n <= 0 || n > size) {
    throw Error("--train-samples " + std::to_string(n) + ": expected 1.." + std::to_string(size) +
                " (the training set's size)");
  }
  if (!d.y.defined() || d.y.dtype() != DType::kI64 || d.num_classes < 1) {
    throw Error("--train-samples: the training set has no class labels to balance");
  }
  const int64_t k = d.num_classes;
  std::vector<int64_t> quota(static_cast<size_t>(k), n / k);
  for (int64_t c = 0; c < n % k; ++c) ++quota[c];
  Rng rng(seed);
  std::vector<int64_t> order, picked;
  data::random_permutation(size, rng, order);
  picked.reserve(static_cast<size_t>(n));
  const int64_t* y = d.y.data<int64_t>();
  for (int64_t i : order) {
    const int64_t c = y[i];
    if (c >= 0 && c < k && quota[c] > 0) {
      --quota[c];
      picked.push_back(i);
    }
  }
  for (int64_t c = 0; c < k; ++c) {
    if (quota[c] > 0) {
      throw Error("--train-samples " + std::to_string(n) + ": class " + std::to_string(c) +
                  " has too few training samples for a balanced subset");
    }
  }
  return d.subset(picked);
}

std::shared_ptr<Teacher> setup_distillation(const Graph& teacher, const Graph& student,
                                            const DistillSettings& s, int64_t train_size,
                                            TrainConfig& config) {
  if (!(s.temperature > 0)) {
    throw Error("--temperature must be > 0, got " + std::to_string(s.temperature));
  }
  if (!(s.alpha >= 0 && s.alpha <= 1)) {
    throw Error("--alpha must be in [0, 1], got " + std::to_string(s.alpha));
  }
  if (!(s.feature_weight >= 0)) throw Error("--feature-weight must be >= 0");
  std::string teacher_value, student_value;
  if (!s.feature_map.empty()) {
    const size_t eq = s.feature_map.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == s.feature_map.size()) {
      throw Error("--feature-map '" + s.feature_map + "': expected TEACHER_NODE=STUDENT_NODE");
    }
    teacher_value = resolve_value(teacher, s.feature_map.substr(0, eq), "--feature-map teacher");
    student_value = resolve_value(student, s.feature_map.substr(eq + 1), "--feature-map student");
  }
  if (!student_value.empty() && !config.resume_path.empty()) {
    // The hint adapter lives in the training session only; checkpoints hold the student graph,
    // so a resumed run would restart the adapter from scratch and silently differ.
    throw Error("--feature-map: a run with hint distillation cannot be resumed from '" +
                config.resume_path + "' (checkpoints do not hold the feature adapter)");
  }
  auto t = std::make_shared<Teacher>(teacher, teacher_value, train_size);
  if (student.outputs.size() != 1) throw Error("--student: the student must have one output");
  const ValueInfo logits = student.infer_shapes().at(student.outputs[0].name);
  if (logits.shape.size() != 2 || logits.shape[1] != t->classes()) {
    throw Error("--student: output '" + logits.name + "' has shape " + shape_str(logits.shape) +
                " but the teacher has " + std::to_string(t->classes()) + " classes; expected [N, " +
                std::to_string(t->classes()) + "]");
  }
  config.distill.temperature = s.temperature;
  config.distill.alpha = s.alpha;
  config.distill.student_feature = student_value;
  config.distill.teacher_feature = t->feature_shape();
  config.distill.feature_weight = s.feature_weight;
  config.distill.adapter_seed = config.seed;
  config.teacher = [t](const TeacherBatch& b, Tensor& logits, Tensor& feature) {
    t->fill(b, logits, feature);
  };
  return t;
}

}  // namespace minnow::compress
