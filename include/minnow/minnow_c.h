/* minnow C API: load a .mnw model, query its inputs and outputs, run inference.
 *
 * Links against the minnow_runtime library (inference only: no training, data or CLI code).
 * Every function that can fail returns NULL or MINNOW_ERROR and leaves a message for
 * minnow_last_error(); no function aborts or throws across the C boundary.
 *
 * Typical use:
 *   minnow_model* m = minnow_model_load_file("model.mnw");
 *   if (!m) { fprintf(stderr, "%s\n", minnow_last_error()); return 1; }
 *   int64_t shape[4] = {1, 1, 28, 28};
 *   minnow_tensor in = {minnow_model_input_name(m, 0), MINNOW_F32, 4, shape, pixels};
 *   if (minnow_run(m, &in, 1) != MINNOW_OK) { ... }
 *   const float* logits = (const float*)minnow_output_data(m, 0);
 *   minnow_model_free(m);
 *
 * A model handle is not thread-safe: use one handle per thread (they share nothing).
 */
#ifndef MINNOW_MINNOW_C_H
#define MINNOW_MINNOW_C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct minnow_model minnow_model;

typedef enum { MINNOW_OK = 0, MINNOW_ERROR = 1 } minnow_status;

/* Element types of inputs and outputs. */
typedef enum { MINNOW_F32 = 0, MINNOW_I64 = 1, MINNOW_OTHER = 99 } minnow_dtype;

/* One input tensor: dense, row-major, `data` holds prod(shape) elements of `dtype`. */
typedef struct {
  const char* name;
  minnow_dtype dtype;
  int rank;
  const int64_t* shape;
  const void* data;
} minnow_tensor;

/* The message of the last failed call on this thread ("" if none). */
const char* minnow_last_error(void);

/* Sets the number of threads every model uses (>= 1). */
minnow_status minnow_set_threads(int threads);

/* Load a .mnw model from a file or from memory (the bytes are copied). NULL on error. */
minnow_model* minnow_model_load_file(const char* path);
minnow_model* minnow_model_load_memory(const void* data, size_t size);
void minnow_model_free(minnow_model* model);

/* Inputs and outputs as declared by the model. A dimension of -1 is dynamic (the batch).
 * Names and shapes stay valid until minnow_model_free. Out-of-range indices return
 * 0 / NULL / -1 / MINNOW_OTHER and set the last error. */
int minnow_model_num_inputs(const minnow_model* model);
int minnow_model_num_outputs(const minnow_model* model);
const char* minnow_model_input_name(const minnow_model* model, int index);
const char* minnow_model_output_name(const minnow_model* model, int index);
minnow_dtype minnow_model_input_dtype(const minnow_model* model, int index);
int minnow_model_input_rank(const minnow_model* model, int index);
int64_t minnow_model_input_dim(const minnow_model* model, int index, int axis);

/* Runs the model on every input (each named once, all with the same batch size). */
minnow_status minnow_run(minnow_model* model, const minnow_tensor* inputs, int num_inputs);

/* Results of the last successful minnow_run, valid until the next run or free. */
minnow_dtype minnow_output_dtype(const minnow_model* model, int index);
int minnow_output_rank(const minnow_model* model, int index);
const int64_t* minnow_output_shape(const minnow_model* model, int index);
const void* minnow_output_data(const minnow_model* model, int index);

#ifdef __cplusplus
}
#endif

#endif /* MINNOW_MINNOW_C_H */
