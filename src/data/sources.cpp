#include "data/sources.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "data/idx.h"
#include "minnow/error.h"

namespace minnow::data {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFileList =
    "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
    "t10k-labels-idx1-ubyte (each optionally .gz)";

// The plain file if present, else the .gz one; "" when neither exists.
std::string find_idx(const fs::path& dir, const std::string& stem) {
  std::error_code ec;
  for (const std::string& name : {stem, stem + ".gz"}) {
    fs::path p = dir / name;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return "";
}

Tensor images_to_f32(const Tensor& images, const std::string& path) {
  if (images.dtype() != DType::kU8 || (images.rank() != 3 && images.rank() != 4)) {
    throw Error("image file '" + path + "' holds " + std::string(dtype_name(images.dtype())) + " " +
                shape_str(images.shape()) + ", expected u8 [N, H, W] or [N, C, H, W]");
  }
  Shape shape = images.shape();
  if (images.rank() == 3) shape.insert(shape.begin() + 1, 1);
  Tensor x(DType::kF32, shape);
  const uint8_t* src = images.data<uint8_t>();
  float* dst = x.f32();
  const int64_t n = images.numel();
  // Division (not multiplication by 1/255) makes every value the correctly rounded v/255.
#pragma omp parallel for if (n > (int64_t{1} << 16))
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]) / 255.0f;
  return x;
}

Tensor labels_to_i64(const Tensor& labels, const std::string& path) {
  if (labels.rank() != 1 || dtype_is_float(labels.dtype())) {
    throw Error("label file '" + path + "' holds " + std::string(dtype_name(labels.dtype())) + " " +
                shape_str(labels.shape()) + ", expected integer labels [N]");
  }
  Tensor y(DType::kI64, labels.shape());
  int64_t* dst = y.data<int64_t>();
  for (int64_t i = 0; i < labels.numel(); ++i) {
    int64_t v = 0;
    switch (labels.dtype()) {
      case DType::kU8:
        v = labels.data<uint8_t>()[i];
        break;
      case DType::kI8:
        v = labels.data<int8_t>()[i];
        break;
      case DType::kI32:
        v = labels.data<int32_t>()[i];
        break;
      default:
        v = labels.data<int64_t>()[i];
        break;
    }
    if (v < 0 || v >= 256) {
      throw Error("label file '" + path + "': label " + std::to_string(v) + " of sample " +
                  std::to_string(i) + " is outside [0, 256)");
    }
    dst[i] = v;
  }
  return y;
}

Dataset load_split(const fs::path& dir, const std::string& prefix, const std::string& hint) {
  std::string img_path = find_idx(dir, prefix + "-images-idx3-ubyte");
  std::string lbl_path = find_idx(dir, prefix + "-labels-idx1-ubyte");
  for (const auto& [path, stem] : {std::pair{img_path, prefix + "-images-idx3-ubyte"},
                                   std::pair{lbl_path, prefix + "-labels-idx1-ubyte"}}) {
    if (path.empty()) {
      throw Error("dataset file '" + (dir / stem).string() + "[.gz]' not found: " + hint);
    }
  }
  Dataset d;
  d.x = images_to_f32(read_idx(img_path), img_path);
  d.y = labels_to_i64(read_idx(lbl_path), lbl_path);
  if (d.x.dim(0) != d.y.dim(0)) {
    throw Error("image file '" + img_path + "' holds " + std::to_string(d.x.dim(0)) +
                " images but label file '" + lbl_path + "' holds " + std::to_string(d.y.dim(0)) +
                " labels; they must match");
  }
  return d;
}

int64_t max_label(const Tensor& y) {
  const int64_t* p = y.data<int64_t>();
  return y.numel() ? *std::max_element(p, p + y.numel()) : -1;
}

}  // namespace

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

TrainTest load_dataset(const std::string& spec) {
  TrainTest out;
  fs::path dir;
  std::string hint;
  const bool fashion = spec == "fashion-mnist";
  if (fashion) {
    const char* env = std::getenv("MINNOW_FASHION_MNIST_DIR");
    dir = env && *env ? fs::path(env) : fs::path(kFashionMnistDir);
    hint = env && *env ? "MINNOW_FASHION_MNIST_DIR points to '" + dir.string() +
                             "', which must hold " + kFileList
                       : std::string(
                             "install dataset-fashion-mnist (scripts/setup) or set "
                             "MINNOW_FASHION_MNIST_DIR to a directory holding ") +
                             kFileList;
    out.name = "fashion-mnist";
  } else {
    dir = fs::path(spec);
    std::error_code ec;
    if (spec.empty() || !fs::is_directory(dir, ec)) {
      throw Error("unknown dataset '" + spec +
                  "': expected 'fashion-mnist' or a directory holding " + kFileList);
    }
    hint = std::string("the directory must hold ") + kFileList;
    out.name = dir.filename().string();
    if (out.name.empty()) out.name = dir.parent_path().filename().string();  // "dir/"
    if (out.name.empty()) out.name = spec;
  }

  out.train = load_split(dir, "train", hint);
  out.test = load_split(dir, "t10k", hint);
  if (out.train.sample_shape() != out.test.sample_shape()) {
    throw Error("dataset '" + spec + "': train images are " + shape_str(out.train.sample_shape()) +
                " but test images are " + shape_str(out.test.sample_shape()));
  }
  const int64_t classes = std::max(max_label(out.train.y), max_label(out.test.y)) + 1;
  for (Dataset* d : {&out.train, &out.test}) {
    d->num_classes = classes;
    if (fashion && classes == 10) d->class_names = fashion_mnist_class_names();
  }
  return out;
}

}  // namespace minnow::data
