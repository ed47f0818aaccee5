// The C API (include/minnow/minnow_c.h) over io::parse_mnw and InferenceSession. Every entry
// point catches everything: C callers get a status and minnow_last_error(), never an exception.
#include <omp.h>

#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "io/mnw.h"
#include "minnow/error.h"
#include "minnow/minnow_c.h"
#include "runtime/inference_session.h"

struct minnow_model {
  std::unique_ptr<minnow::InferenceSession> session;
  std::vector<minnow::Tensor> results;
};

namespace {

thread_local std::string g_last_error;

// Runs f, converting any exception into MINNOW_ERROR and a message.
template <class F>
minnow_status guarded(F&& f) {
  try {
    f();
    g_last_error.clear();
    return MINNOW_OK;
  } catch (const std::bad_alloc&) {
    g_last_error = "out of memory";
  } catch (const std::exception& e) {
    g_last_error = e.what();
  } catch (...) {
    g_last_error = "unknown error";
  }
  return MINNOW_ERROR;
}

minnow_model* load(const void* data, size_t size, const std::string& label) {
  minnow_model* out = nullptr;
  guarded([&] {
    minnow::io::MnwContents c = minnow::io::parse_mnw(data, size, label);
    auto m = std::make_unique<minnow_model>();
    m->session = std::make_unique<minnow::InferenceSession>(std::move(c.graph));
    out = m.release();
  });
  return out;
}

minnow_dtype to_c(minnow::DType t) {
  switch (t) {
    case minnow::DType::kF32:
      return MINNOW_F32;
    case minnow::DType::kI64:
      return MINNOW_I64;
    default:
      return MINNOW_OTHER;
  }
}

bool check_model(const minnow_model* m) {
  if (m && m->session) return true;
  g_last_error = "model handle is NULL";
  return false;
}

// The index-th entry of `list` or nullptr (with a message) when out of range.
template <class T>
const T* at(const std::vector<T>& list, int index, const char* what) {
  if (index >= 0 && static_cast<size_t>(index) < list.size()) return &list[index];
  g_last_error = std::string(what) + " index " + std::to_string(index) +
                 " out of range (model has " + std::to_string(list.size()) + ")";
  return nullptr;
}

}  // namespace

extern "C" {

const char* minnow_last_error(void) { return g_last_error.c_str(); }

minnow_status minnow_set_threads(int threads) {
  return guarded([&] {
    if (threads < 1) throw minnow::Error("threads must be >= 1, got " + std::to_string(threads));
    omp_set_num_threads(threads);
  });
}

minnow_model* minnow_model_load_file(const char* path) {
  if (!path) {
    g_last_error = "path is NULL";
    return nullptr;
  }
  std::string bytes;
  const minnow_status st = guarded([&] { bytes = minnow::io::read_file(path); });
  if (st != MINNOW_OK) return nullptr;
  return load(bytes.data(), bytes.size(), path);
}

minnow_model* minnow_model_load_memory(const void* data, size_t size) {
  if (!data && size) {
    g_last_error = "data is NULL";
    return nullptr;
  }
  return load(data, size, "<memory>");
}

void minnow_model_free(minnow_model* model) { delete model; }

int minnow_model_num_inputs(const minnow_model* m) {
  return check_model(m) ? static_cast<int>(m->session->inputs().size()) : 0;
}

int minnow_model_num_outputs(const minnow_model* m) {
  return check_model(m) ? static_cast<int>(m->session->outputs().size()) : 0;
}

const char* minnow_model_input_name(const minnow_model* m, int i) {
  if (!check_model(m)) return nullptr;
  const minnow::ValueInfo* v = at(m->session->inputs(), i, "input");
  return v ? v->name.c_str() : nullptr;
}

const char* minnow_model_output_name(const minnow_model* m, int i) {
  if (!check_model(m)) return nullptr;
  const minnow::ValueInfo* v = at(m->session->outputs(), i, "output");
  return v ? v->name.c_str() : nullptr;
}

minnow_dtype minnow_model_input_dtype(const minnow_model* m, int i) {
  if (!check_model(m)) return MINNOW_OTHER;
  const minnow::ValueInfo* v = at(m->session->inputs(), i, "input");
  return v ? to_c(v->dtype) : MINNOW_OTHER;
}

int minnow_model_input_rank(const minnow_model* m, int i) {
  if (!check_model(m)) return -1;
  const minnow::ValueInfo* v = at(m->session->inputs(), i, "input");
  return v ? static_cast<int>(v->shape.size()) : -1;
}

int64_t minnow_model_input_dim(const minnow_model* m, int i, int axis) {
  if (!check_model(m)) return -1;
  const minnow::ValueInfo* v = at(m->session->inputs(), i, "input");
  if (!v) return -1;
  if (axis < 0 || static_cast<size_t>(axis) >= v->shape.size()) {
    g_last_error = "axis " + std::to_string(axis) + " out of range for input '" + v->name + "'";
    return -1;
  }
  return v->shape[axis];
}

minnow_status minnow_run(minnow_model* m, const minnow_tensor* inputs, int num_inputs) {
  if (!check_model(m)) return MINNOW_ERROR;
  return guarded([&] {
    if (num_inputs < 0 || (num_inputs > 0 && !inputs)) throw minnow::Error("inputs are NULL");
    std::map<std::string, minnow::Tensor> feeds;
    for (int i = 0; i < num_inputs; ++i) {
      const minnow_tensor& t = inputs[i];
      if (!t.name) throw minnow::Error("input " + std::to_string(i) + " has no name");
      if (t.rank < 0 || t.rank > 8 || (t.rank > 0 && !t.shape)) {
        throw minnow::Error("input '" + std::string(t.name) + "' has rank " +
                            std::to_string(t.rank) + " (0..8 with a shape)");
      }
      minnow::DType dt;
      if (t.dtype == MINNOW_F32) {
        dt = minnow::DType::kF32;
      } else if (t.dtype == MINNOW_I64) {
        dt = minnow::DType::kI64;
      } else {
        throw minnow::Error("input '" + std::string(t.name) + "' has an unsupported dtype");
      }
      minnow::Shape shape(t.shape, t.shape + t.rank);
      // Checked against the model before `data` is read: a caller's buffer is only as large as
      // its own dtype and shape say, so a mismatch must not be copied first and refused after.
      const minnow::ValueInfo* declared = nullptr;
      for (const minnow::ValueInfo& v : m->session->inputs()) {
        if (v.name == t.name) declared = &v;
      }
      if (!declared) throw minnow::Error("model has no input named '" + std::string(t.name) + "'");
      bool fits = declared->dtype == dt && declared->shape.size() == shape.size();
      for (size_t d = 0; fits && d < shape.size(); ++d) {
        fits = shape[d] >= 0 &&
               (declared->shape[d] == minnow::kDynamic || declared->shape[d] == shape[d]);
      }
      if (!fits) {
        throw minnow::Error("input '" + declared->name + "' is " + minnow::shape_str(shape) + " " +
                            std::string(minnow::dtype_name(dt)) + ", the model expects " +
                            minnow::shape_str(declared->shape) + " " +
                            std::string(minnow::dtype_name(declared->dtype)));
      }
      minnow::Tensor x(dt, shape);  // checks the size; the session checks the common batch
      if (x.numel() > 0 && !t.data) {
        throw minnow::Error("input '" + std::string(t.name) + "' has no data");
      }
      if (x.numel() > 0) std::memcpy(x.raw(), t.data, x.nbytes());
      if (!feeds.emplace(t.name, std::move(x)).second) {
        throw minnow::Error("input '" + std::string(t.name) + "' given twice");
      }
    }
    m->results = m->session->run(feeds);
  });
}

minnow_dtype minnow_output_dtype(const minnow_model* m, int i) {
  if (!check_model(m)) return MINNOW_OTHER;
  const minnow::Tensor* t = at(m->results, i, "output (of the last run)");
  return t ? to_c(t->dtype()) : MINNOW_OTHER;
}

int minnow_output_rank(const minnow_model* m, int i) {
  if (!check_model(m)) return -1;
  const minnow::Tensor* t = at(m->results, i, "output (of the last run)");
  return t ? t->rank() : -1;
}

const int64_t* minnow_output_shape(const minnow_model* m, int i) {
  if (!check_model(m)) return nullptr;
  const minnow::Tensor* t = at(m->results, i, "output (of the last run)");
  return t ? t->shape().data() : nullptr;
}

const void* minnow_output_data(const minnow_model* m, int i) {
  if (!check_model(m)) return nullptr;
  const minnow::Tensor* t = at(m->results, i, "output (of the last run)");
  return t ? t->raw() : nullptr;
}

}  // extern "C"
