// The C API (include/minnow/minnow_c.h): load from file and memory, query inputs and outputs,
// results equal to the C++ InferenceSession, every misuse a status plus a message (never an
// exception or crash), and the examples/classify.c program built and run end to end.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/mnw.h"
#include "minnow/builder.h"
#include "minnow/minnow_c.h"
#include "runtime/inference_session.h"

namespace fs = std::filesystem;

namespace minnow {
namespace {

Graph small_cnn() {
  GraphBuilder b("cnn", 3);
  std::string x = b.input("pixels", {kDynamic, 1, 6, 6});
  std::string h = b.relu(b.conv2d(x, 4, 3, {.pad = 1}, "conv"));
  b.output(b.linear(b.flatten(b.global_avg_pool(h)), 3, true, "fc"));
  return b.build();
}

class CApi : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ =
        (fs::temp_directory_path() / ("minnow_capi_" + std::to_string(getpid()) + ".mnw")).string();
    io::MnwContents c;
    c.graph = small_cnn();
    io::save_mnw(path_, c);
    minnow_set_threads(1);
  }
  void TearDown() override { fs::remove(path_); }
  std::string path_;
};

TEST_F(CApi, LoadQueryRunMatchesTheSession) {
  minnow_model* m = minnow_model_load_file(path_.c_str());
  ASSERT_NE(m, nullptr) << minnow_last_error();
  EXPECT_EQ(minnow_model_num_inputs(m), 1);
  EXPECT_EQ(minnow_model_num_outputs(m), 1);
  EXPECT_STREQ(minnow_model_input_name(m, 0), "pixels");
  EXPECT_EQ(minnow_model_input_dtype(m, 0), MINNOW_F32);
  EXPECT_EQ(minnow_model_input_rank(m, 0), 4);
  EXPECT_EQ(minnow_model_input_dim(m, 0, 0), -1);  // the dynamic batch
  EXPECT_EQ(minnow_model_input_dim(m, 0, 3), 6);

  std::vector<float> x(2 * 36);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) * 0.25f - 0.5f;
  const int64_t shape[4] = {2, 1, 6, 6};
  minnow_tensor in = {"pixels", MINNOW_F32, 4, shape, x.data()};
  ASSERT_EQ(minnow_run(m, &in, 1), MINNOW_OK) << minnow_last_error();
  ASSERT_EQ(minnow_output_rank(m, 0), 2);
  EXPECT_EQ(minnow_output_shape(m, 0)[0], 2);
  EXPECT_EQ(minnow_output_shape(m, 0)[1], 3);
  EXPECT_EQ(minnow_output_dtype(m, 0), MINNOW_F32);

  InferenceSession session(small_cnn());
  Tensor t(DType::kF32, {2, 1, 6, 6});
  std::copy(x.begin(), x.end(), t.f32());
  const Tensor& want = session.run({{"pixels", t}})[0];
  const float* got = static_cast<const float*>(minnow_output_data(m, 0));
  for (int64_t i = 0; i < want.numel(); ++i) EXPECT_FLOAT_EQ(got[i], want.f32()[i]);
  minnow_model_free(m);
}

TEST_F(CApi, LoadFromMemoryEqualsLoadFromFile) {
  std::ifstream f(path_, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string bytes = ss.str();
  minnow_model* m = minnow_model_load_memory(bytes.data(), bytes.size());
  ASSERT_NE(m, nullptr) << minnow_last_error();
  EXPECT_STREQ(minnow_model_output_name(m, 0), small_cnn().outputs[0].name.c_str());
  minnow_model_free(m);
  // Every truncation of the file is refused with a message.
  for (size_t n : {size_t{0}, size_t{10}, bytes.size() / 2, bytes.size() - 1}) {
    EXPECT_EQ(minnow_model_load_memory(bytes.data(), n), nullptr) << n;
    EXPECT_STRNE(minnow_last_error(), "") << n;
  }
}

TEST_F(CApi, MisuseIsAStatusAndAMessage) {
  EXPECT_EQ(minnow_model_load_file("/nonexistent/model.mnw"), nullptr);
  EXPECT_NE(std::string(minnow_last_error()).find("/nonexistent/model.mnw"), std::string::npos);
  EXPECT_EQ(minnow_model_load_file(nullptr), nullptr);
  EXPECT_EQ(minnow_set_threads(0), MINNOW_ERROR);
  EXPECT_EQ(minnow_model_num_inputs(nullptr), 0);
  EXPECT_EQ(minnow_run(nullptr, nullptr, 0), MINNOW_ERROR);

  minnow_model* m = minnow_model_load_file(path_.c_str());
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(minnow_model_input_name(m, 5), nullptr);
  EXPECT_NE(std::string(minnow_last_error()).find("out of range"), std::string::npos);
  EXPECT_EQ(minnow_model_input_dim(m, 0, 9), -1);
  EXPECT_EQ(minnow_output_data(m, 0), nullptr);  // nothing has run yet

  std::vector<float> x(36);
  const int64_t good[4] = {1, 1, 6, 6}, bad[4] = {1, 1, 5, 6}, negative[4] = {1, -1, 6, 6};
  auto run = [&](minnow_tensor t) {
    const minnow_status st = minnow_run(m, &t, 1);
    return st == MINNOW_OK ? std::string() : std::string(minnow_last_error());
  };
  EXPECT_NE(run({"pixels", MINNOW_F32, 4, bad, x.data()}).find("pixels"), std::string::npos);
  EXPECT_NE(run({"nope", MINNOW_F32, 4, good, x.data()}), "");
  // The wrong dtype is refused before the buffer (36 floats, too small for 36 i64) is read.
  EXPECT_NE(run({"pixels", MINNOW_I64, 4, good, x.data()}).find("expects"), std::string::npos);
  EXPECT_NE(run({"pixels", MINNOW_OTHER, 4, good, x.data()}), "");
  EXPECT_NE(run({"pixels", MINNOW_F32, 4, negative, x.data()}), "");
  EXPECT_NE(run({"pixels", MINNOW_F32, 4, good, nullptr}), "");
  EXPECT_NE(run({nullptr, MINNOW_F32, 4, good, x.data()}), "");
  EXPECT_EQ(minnow_run(m, nullptr, 0), MINNOW_ERROR);             // the input is missing
  EXPECT_EQ(run({"pixels", MINNOW_F32, 4, good, x.data()}), "");  // still usable afterwards
  EXPECT_STREQ(minnow_last_error(), "");
  minnow_model_free(m);
  minnow_model_free(nullptr);  // like free(NULL)
}

std::pair<int, std::string> run_example(const std::string& args) {
  const std::string cmd = std::string(MINNOW_EXAMPLE_PATH) + " " + args + " 2>&1";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST_F(CApi, ExampleProgramRuns) {
  auto [code, out] = run_example(path_ + " 1");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("input 0: pixels [-1,1,6,6]"), std::string::npos) << out;
  EXPECT_NE(out.find("argmax"), std::string::npos) << out;
  auto [bad_code, bad_out] = run_example("/nonexistent.mnw");
  EXPECT_EQ(bad_code, 1);
  EXPECT_NE(bad_out.find("classify: load:"), std::string::npos) << bad_out;
}

}  // namespace
}  // namespace minnow
