#include "compact_test_util.h"

#include <algorithm>
#include <cstring>

#include "core/rng.h"
#include "minnow/error.h"

namespace minnow::io::testing {

using nlohmann::json;

MnwContents linear_model(const Tensor& w) {
  MnwContents c;
  Graph& g = c.graph;
  g.name = "compact";
  g.inputs = {{"x", w.dtype(), {kDynamic, w.dim(1)}}};
  g.outputs = {{"y", w.dtype(), {kDynamic, w.dim(0)}}};
  g.nodes.push_back(Node{"fc", OpKind::kLinear, {"x", "w", "b"}, {"y"}, {}});
  g.initializers["w"] = Initializer{w, true};
  g.initializers["b"] = Initializer{Tensor(w.dtype(), {w.dim(0)}), true};
  return c;
}

Tensor weights(Shape shape, double zero_fraction, int values, uint64_t seed, DType dtype) {
  Rng rng(seed);
  Tensor t(dtype, shape);
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = 0;
    if (rng.uniform() >= zero_fraction) {
      v = values > 0 ? 0.01 * (1 + static_cast<int>(rng.below(values))) - 0.005 * values
                     : rng.uniform(-1.0f, 1.0f);
      if (v == 0) v = 0.5;
    }
    if (dtype == DType::kF64) {
      t.data<double>()[i] = v + (values > 0 ? 0 : 1e-12 * rng.uniform());
    } else {
      t.f32()[i] = static_cast<float>(v);
    }
  }
  return t;
}

json tensor_entry(const std::string& file, const std::string& name, uint32_t kind) {
  RawFile f = split_mnw(file);
  RawTensorSection ts = split_tensor_section(f.section(kind));
  for (const json& e : ts.index) {
    if (e["name"] == name) return e;
  }
  ADD_FAILURE() << "no tensor " << name;
  return json();
}

std::string error_of(const std::string& bytes) {
  try {
    decode_mnw(bytes.data(), bytes.size(), "model.mnw");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string mutated(const Tensor& w, const Mutation& mutate) {
  RawFile f = split_mnw(serialize_mnw(linear_model(w)));
  RawTensorSection ts = split_tensor_section(f.section(kTensors));
  for (json& e : ts.index) {
    if (e["name"] != "w") continue;
    const size_t at = e["offset"].get<size_t>(), n = e["nbytes"].get<size_t>();
    std::string payload = ts.data.substr(at, n);
    mutate(e, payload);
    // Move the payload to the end of the data area so that it may grow.
    std::fill(ts.data.begin() + at, ts.data.begin() + at + n, '\0');
    const size_t new_at = (ts.data.size() + 63) / 64 * 64;
    ts.data.resize(new_at, '\0');
    ts.data += payload;
    ts.data.resize((ts.data.size() + 63) / 64 * 64, '\0');
    e["offset"] = new_at;
    e["nbytes"] = payload.size();
  }
  f.section(kTensors) = assemble_tensor_section(ts);
  return assemble_mnw(f);
}

Mutation hand_made(json spec, std::string payload) {
  return [spec, payload](json& e, std::string& p) {
    e["compact"] = spec;
    p = payload;
  };
}

Tensor decoded_w(const std::string& file) {
  MnwContents c = decode_mnw(file.data(), file.size(), "model.mnw");
  return c.graph.initializers.at("w").value;
}

void append_f32(std::string& s, float v) {
  char b[4];
  std::memcpy(b, &v, 4);
  s.append(b, 4);
}

}  // namespace minnow::io::testing
