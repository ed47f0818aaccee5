/* Runs a minnow model through the C API: prints the model's inputs and outputs, runs one
 * sample (every input value 0.5 for f32 inputs, 1 for i64 inputs such as token ids and
 * lengths) and prints the output with its largest entry.
 *
 *   classify MODEL.mnw [THREADS]
 *
 * Exit code 0 on success, 1 with a one-line error otherwise.
 */
#include <stdio.h>
#include <stdlib.h>

#include "minnow/minnow_c.h"

#define MAX_INPUTS 8
#define MAX_RANK 8

static int fail(const char* what) {
  fprintf(stderr, "classify: %s: %s\n", what, minnow_last_error());
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: classify MODEL.mnw [THREADS]\n");
    return 1;
  }
  if (minnow_set_threads(argc > 2 ? atoi(argv[2]) : 1) != MINNOW_OK) return fail("threads");
  minnow_model* model = minnow_model_load_file(argv[1]);
  if (!model) return fail("load");

  int n_in = minnow_model_num_inputs(model);
  if (n_in > MAX_INPUTS) {
    fprintf(stderr, "classify: model has %d inputs, this example handles %d\n", n_in, MAX_INPUTS);
    minnow_model_free(model);
    return 1;
  }
  minnow_tensor inputs[MAX_INPUTS];
  int64_t shapes[MAX_INPUTS][MAX_RANK];
  void* buffers[MAX_INPUTS] = {0};
  int status = 0;
  for (int i = 0; i < n_in && !status; ++i) {
    int rank = minnow_model_input_rank(model, i);
    if (rank < 0 || rank > MAX_RANK) {
      status = fail("input rank");
      break;
    }
    int64_t count = 1;
    printf("input %d: %s [", i, minnow_model_input_name(model, i));
    for (int d = 0; d < rank; ++d) {
      int64_t dim = minnow_model_input_dim(model, i, d);
      shapes[i][d] = dim < 0 ? 1 : dim; /* batch of one */
      count *= shapes[i][d];
      printf("%s%lld", d ? "," : "", (long long)dim);
    }
    printf("]\n");
    minnow_dtype dtype = minnow_model_input_dtype(model, i);
    if (dtype == MINNOW_F32) {
      float* p = malloc(sizeof(float) * (size_t)count);
      for (int64_t k = 0; p && k < count; ++k) p[k] = 0.5f;
      buffers[i] = p;
    } else if (dtype == MINNOW_I64) {
      int64_t* p = malloc(sizeof(int64_t) * (size_t)count);
      for (int64_t k = 0; p && k < count; ++k) p[k] = 1;
      buffers[i] = p;
    } else {
      fprintf(stderr, "classify: input %d has a dtype this example does not fill\n", i);
      status = 1;
      break;
    }
    if (!buffers[i]) {
      fprintf(stderr, "classify: out of memory\n");
      status = 1;
      break;
    }
    minnow_tensor t = {minnow_model_input_name(model, i), dtype, rank, shapes[i], buffers[i]};
    inputs[i] = t;
  }
  if (!status && minnow_run(model, inputs, n_in) != MINNOW_OK) status = fail("run");
  for (int o = 0; !status && o < minnow_model_num_outputs(model); ++o) {
    int rank = minnow_output_rank(model, o);
    const int64_t* shape = minnow_output_shape(model, o);
    int64_t count = 1;
    printf("output %d: %s [", o, minnow_model_output_name(model, o));
    for (int d = 0; d < rank; ++d) {
      printf("%s%lld", d ? "," : "", (long long)shape[d]);
      count *= shape[d];
    }
    printf("]\n");
    if (minnow_output_dtype(model, o) != MINNOW_F32 || count == 0) continue;
    const float* y = minnow_output_data(model, o);
    int64_t best = 0;
    for (int64_t k = 0; k < count; ++k) {
      printf("%s%.6f", k ? " " : "  ", y[k]);
      if (y[k] > y[best]) best = k;
    }
    printf("\n  argmax %lld\n", (long long)best);
  }
  for (int i = 0; i < n_in; ++i) free(buffers[i]);
  minnow_model_free(model);
  return status;
}
