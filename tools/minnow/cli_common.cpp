#include "cli_common.h"

#include <omp.h>

#include <filesystem>

#include "io/atomic_file.h"
#include "io/mnw.h"
#include "minnow/error.h"

namespace minnow::cli {

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
  io::MnwContents c = io::load_mnw(spec);
  m.graph = std::move(c.graph);
  m.metadata = std::move(c.metadata);
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

void set_threads(int threads) {
  if (threads < 1) throw Error("--threads must be >= 1, got " + std::to_string(threads));
  omp_set_num_threads(threads);
}

void write_report(const std::string& path, const nlohmann::json& report) {
  if (path.empty()) return;
  io::write_file_atomic(path, report.dump(2) + "\n");
}

}  // namespace minnow::cli
