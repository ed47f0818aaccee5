// onnx_node_tests: runs the ONNX backend node tests (Debian libonnx-testdata) through minnow's
// importer and inference session, and closes with "onnx node tests: P passed, F failed, S skipped".
//
// A test is skipped when its model uses an op, dtype or attribute minnow does not support (the
// importer says so with onnx::Unsupported); it fails when the import of a supported model
// errs, the run errs, or an output differs from the expected one in dtype, shape or value
// (|a - e| <= atol + rtol * |e|, ONNX's own defaults rtol 1e-3, atol 1e-7; NaN equals NaN).
//
//   onnx_node_tests [--dir D] [--filter SUBSTRING] [--verbose] [--list-skipped]
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "minnow/error.h"
#include "onnx/import_context.h"
#include "onnx/onnx_import.h"
#include "onnx/onnx_tensor.h"
#include "runtime/inference_session.h"

namespace fs = std::filesystem;
using namespace minnow;
namespace mo = minnow::onnx;

namespace {

Tensor read_tensor_pb(const fs::path& p) {
  const std::string bytes = io::read_file(p.string());
  ::onnx::TensorProto t;
  if (!t.ParseFromString(bytes)) throw Error(p.string() + ": not a TensorProto");
  return mo::tensor_from_proto(t, p.string());
}

double elem(const Tensor& t, int64_t i) { return mo::element_as_double(t, i); }

// Empty when equal, else what differs.
std::string compare(const Tensor& got, const Tensor& want) {
  if (got.dtype() != want.dtype()) {
    return "dtype " + std::string(dtype_name(got.dtype())) + ", expected " +
           std::string(dtype_name(want.dtype()));
  }
  if (got.shape() != want.shape()) {
    return "shape " + shape_str(got.shape()) + ", expected " + shape_str(want.shape());
  }
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double a = elem(got, i), e = elem(want, i);
    if (std::isnan(a) && std::isnan(e)) continue;
    if (std::isinf(e) && a == e) continue;
    if (!(std::abs(a - e) <= 1e-7 + 1e-3 * std::abs(e))) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "element %lld is %.9g, expected %.9g",
                    static_cast<long long>(i), a, e);
      return buf;
    }
  }
  return "";
}

enum class Outcome { kPassed, kFailed, kSkipped };

Outcome run_test(const fs::path& dir, std::string& why) {
  Graph g;
  try {
    g = mo::import_onnx_file((dir / "model.onnx").string());
  } catch (const mo::Unsupported& e) {
    why = e.what();
    return Outcome::kSkipped;
  } catch (const Error& e) {
    why = std::string("import: ") + e.what();
    return Outcome::kFailed;
  }
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) {
      sets.push_back(e.path());
    }
  }
  std::sort(sets.begin(), sets.end());
  try {
    InferenceSession session(g);
    for (const fs::path& set : sets) {
      std::map<std::string, Tensor> feeds;
      for (size_t i = 0; i < g.inputs.size(); ++i) {
        const fs::path p = set / ("input_" + std::to_string(i) + ".pb");
        if (!fs::exists(p)) throw Error(p.string() + " missing");
        feeds[g.inputs[i].name] = read_tensor_pb(p);
      }
      const std::vector<Tensor>& outs = session.run(feeds);
      for (size_t i = 0; i < outs.size(); ++i) {
        const Tensor want = read_tensor_pb(set / ("output_" + std::to_string(i) + ".pb"));
        std::string diff = compare(outs[i], want);
        if (!diff.empty()) {
          why = set.filename().string() + " output " + g.outputs[i].name + ": " + diff;
          return Outcome::kFailed;
        }
      }
    }
  } catch (const Error& e) {
    why = std::string("run: ") + e.what();
    return Outcome::kFailed;
  }
  return Outcome::kPassed;
}

}  // namespace

int main(int argc, char** argv) {
  std::string root = "/usr/share/libonnx-testdata/data/node", filter;
  bool verbose = false, list_skipped = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc) {
      root = argv[++i];
    } else if (a == "--filter" && i + 1 < argc) {
      filter = argv[++i];
    } else if (a == "--verbose") {
      verbose = true;
    } else if (a == "--list-skipped") {
      list_skipped = true;
    } else {
      std::fprintf(stderr, "onnx_node_tests: error: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (!fs::is_directory(root)) {
    std::fprintf(stderr,
                 "onnx_node_tests: error: %s is not a directory (install libonnx-testdata)\n",
                 root.c_str());
    return 2;
  }
  std::vector<fs::path> tests;
  for (const auto& e : fs::directory_iterator(root)) {
    if (e.is_directory() && fs::exists(e.path() / "model.onnx") &&
        e.path().filename().string().find(filter) != std::string::npos) {
      tests.push_back(e.path());
    }
  }
  std::sort(tests.begin(), tests.end());
  int passed = 0, failed = 0, skipped = 0;
  for (const fs::path& t : tests) {
    std::string why;
    const Outcome o = run_test(t, why);
    const std::string name = t.filename().string();
    if (o == Outcome::kPassed) {
      ++passed;
      if (verbose) std::printf("PASS %s\n", name.c_str());
    } else if (o == Outcome::kFailed) {
      ++failed;
      std::printf("FAIL %s: %s\n", name.c_str(), why.c_str());
    } else {
      ++skipped;
      if (verbose || list_skipped) std::printf("SKIP %s: %s\n", name.c_str(), why.c_str());
    }
  }
  std::printf("onnx node tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed == 0 ? 0 : 1;
}
