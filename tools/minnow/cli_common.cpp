#include "cli_common.h"

#include <omp.h>

#include <cstdio>
#include <filesystem>

#include "io/atomic_file.h"
#include "io/mnw.h"
#include "minnow/error.h"
#include "onnx/import_context.h"
#include "onnx/onnx_import.h"

namespace minnow::cli {

bool is_onnx_path(const std::string& path) {
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".onnx") == 0;
}

LoadedModel load_model(const std::string& spec, const zoo::ZooOptions& zoo_options) {
  LoadedModel m;
  m.source = spec;
  if (zoo::has(spec)) {
    m.graph = zoo::build(spec, zoo_options);
    return m;
  }
  if (!std::filesystem::exists(spec)) {
    if (spec.find('/') == std::string::npos && spec.find('.') == std::string::npos) {
      zoo::build(spec, zoo_options);  // throws "unknown model 'x' (known: ...)"
    }
    throw Error(spec + ": no such model file");
  }
  if (is_onnx_path(spec)) {
    // The batch (first) dimension is made symbolic so the model trains and runs at any batch
    // size; a graph that bakes its batch into a constant shape is imported as written.
    onnx::ImportOptions dynamic;
    dynamic.dynamic_batch = true;
    try {
      m.graph = onnx::import_onnx_file(spec, dynamic);
    } catch (const onnx::Unsupported&) {
      throw;
    } catch (const Error&) {
      m.graph = onnx::import_onnx_file(spec);
    }
  } else {
    io::MnwContents c = io::load_mnw(spec);
    m.graph = std::move(c.graph);
    m.metadata = std::move(c.metadata);
  }
  m.file_bytes = static_cast<int64_t>(std::filesystem::file_size(spec));
  return m;
}

data::Normalization model_normalization(const nlohmann::json& metadata,
                                        const data::Normalization& fallback) {
  if (!metadata.contains("normalization")) return fallback;
  const nlohmann::json& n = metadata["normalization"];
  try {
    data::Normalization out;
    out.mean = n.at("mean").get<std::vector<float>>();
    out.std = n.at("std").get<std::vector<float>>();
    if (out.mean.size() != out.std.size()) throw Error("mean and std lengths differ");
    for (float s : out.std) {
      if (!(s > 0)) throw Error("std must be positive");
    }
    return out;
  } catch (const nlohmann::json::exception&) {
    throw Error("model metadata 'normalization' is malformed");
  }
}

void add_data_flags(CLI::App& cmd, DataFlags& f) {
  cmd.add_option("--data", f.spec,
                 "fashion-mnist, mnist, spam, DIR (IDX files or class folders), FILE.csv, "
                 "images:DIR, text:DIR (see docs/data.md)")
      ->required();
  cmd.add_option("--max-len", f.max_len, "Text: tokens per sample (pad/truncate)")
      ->capture_default_str();
  cmd.add_option("--vocab-size", f.vocab_size, "Text: vocabulary size incl. PAD and OOV")
      ->capture_default_str();
  cmd.add_option("--tokens", f.tokens, "Text: word | byte")->capture_default_str();
  cmd.add_option("--resize", f.resize, "Images: resize to HxW (or N for NxN)");
}

data::TrainTest load_data(const DataFlags& f, const nlohmann::json& metadata) {
  if (f.max_len <= 0) throw Error("--max-len must be positive, got " + std::to_string(f.max_len));
  if (f.vocab_size <= 2) {
    throw Error("--vocab-size must be > 2 (PAD and OOV are reserved), got " +
                std::to_string(f.vocab_size));
  }
  if (f.tokens != "word" && f.tokens != "byte")
    throw Error("--tokens must be word or byte, got '" + f.tokens + "'");
  data::LoadOptions lo;
  lo.text.max_len = f.max_len;
  lo.text.vocab_size = f.vocab_size;
  lo.text.byte_level = f.tokens == "byte";
  if (!f.resize.empty()) {
    int h = 0, w = 0;
    char x = 0, extra = 0;
    int n = std::sscanf(f.resize.c_str(), "%d%c%d%c", &h, &x, &w, &extra);
    if (n == 1) w = h;
    if (!((n == 1) || (n == 3 && (x == 'x' || x == 'X'))) || h <= 0 || w <= 0) {
      throw Error("--resize must be HxW or N with positive sizes, got '" + f.resize + "'");
    }
    lo.resize_height = h;
    lo.resize_width = w;
  }
  if (metadata.contains("tokenizer")) {
    try {
      lo.tokenizer = data::Tokenizer::from_json(metadata["tokenizer"]);
    } catch (const nlohmann::json::exception&) {
      throw Error("model metadata 'tokenizer' is malformed");
    }
  }
  return data::load_dataset(f.spec, lo);
}

data::Normalization data_normalization(const nlohmann::json& metadata, const data::Dataset& train) {
  if (train.x.dtype() == DType::kI64) return {};
  return model_normalization(metadata, data::compute_normalization(train));
}

void set_threads(int threads) {
  if (threads < 1) throw Error("--threads must be >= 1, got " + std::to_string(threads));
  omp_set_num_threads(threads);
}

void write_report(const std::string& path, const nlohmann::json& report) {
  if (path.empty()) return;
  io::write_file_atomic(path, report.dump(2) + "\n");
}

}  // namespace minnow::cli
