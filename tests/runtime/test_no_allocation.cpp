// The inference runtime allocates nothing per run once a batch size has been planned
// (issue: "minnow run on a .mnw does not allocate per run"). Every heap allocation of the
// process is seen by interposing operator new and the C allocator (malloc, calloc, realloc,
// posix_memalign, aligned_alloc, memalign) in this test binary, forwarding to glibc.
//
// Each allocation is attributed to the code that asked for it (the return address): minnow's
// own code must make none per run. oneDNN and libgomp keep small per-call bookkeeping inside
// the libraries (oneDNN's execution context maps, libgomp's one-thread teams) that no caller can
// avoid; those are counted separately and must stay small — no buffer-sized allocation
// (>= 16 KiB) from anyone.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>

#include "minnow/zoo.h"
#include "runtime/inference_session.h"

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

namespace {

constexpr size_t kLargeBytes = 16 * 1024;

std::atomic<bool> g_counting{false};
std::atomic<long> g_own{0}, g_library{0}, g_large{0};
const void* g_own_example = nullptr;

bool in_library(const void* caller) {
  Dl_info info;
  if (!dladdr(caller, &info) || !info.dli_fname) return false;
  return std::strstr(info.dli_fname, "libdnnl") || std::strstr(info.dli_fname, "libgomp");
}

void record(size_t bytes, const void* caller) {
  if (!g_counting.load(std::memory_order_relaxed)) return;
  g_counting = false;  // dladdr must not recurse into the count
  if (bytes >= kLargeBytes) ++g_large;
  if (in_library(caller)) {
    ++g_library;
  } else {
    if (!g_own_example) g_own_example = caller;
    ++g_own;
  }
  g_counting = true;
}

}  // namespace

extern "C" {
void* malloc(size_t n) {
  record(n, __builtin_return_address(0));
  return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
  record(a * b, __builtin_return_address(0));
  return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  record(n, __builtin_return_address(0));
  return __libc_realloc(p, n);
}
void free(void* p) { __libc_free(p); }
int posix_memalign(void** out, size_t align, size_t n) {
  record(n, __builtin_return_address(0));
  void* p = __libc_memalign(align, n);
  if (!p) return 12;  // ENOMEM
  *out = p;
  return 0;
}
void* aligned_alloc(size_t align, size_t n) {
  record(n, __builtin_return_address(0));
  return __libc_memalign(align, n);
}
void* memalign(size_t align, size_t n) {
  record(n, __builtin_return_address(0));
  return __libc_memalign(align, n);
}
}

// operator new attributes to its caller (the default one would attribute to libstdc++).
void* operator new(size_t n) {
  record(n, __builtin_return_address(0));
  if (void* p = __libc_malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) {
  record(n, __builtin_return_address(0));
  if (void* p = __libc_malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(size_t n, std::align_val_t a) {
  record(n, __builtin_return_address(0));
  if (void* p = __libc_memalign(static_cast<size_t>(a), n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n, std::align_val_t a) {
  record(n, __builtin_return_address(0));
  if (void* p = __libc_memalign(static_cast<size_t>(a), n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { __libc_free(p); }
void operator delete[](void* p) noexcept { __libc_free(p); }
void operator delete(void* p, size_t) noexcept { __libc_free(p); }
void operator delete[](void* p, size_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { __libc_free(p); }

namespace minnow {
namespace {

struct Counts {
  long own, library, large;
};

Counts allocations_during_runs(const std::string& model, Shape input_shape, int64_t batch,
                               int runs) {
  zoo::ZooOptions o;
  o.input_shape = input_shape;
  o.classes = 10;
  InferenceSession s(zoo::build(model, o));
  Shape shape{batch};
  shape.insert(shape.end(), input_shape.begin(), input_shape.end());
  Tensor x(DType::kF32, shape);
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = static_cast<float>(i % 17) * 0.1f;
  const std::map<std::string, Tensor> feeds{{s.inputs()[0].name, x}};
  s.run(feeds);  // plans this batch size: kernels, oneDNN primitives, the arena
  s.run(feeds);
  g_own = g_library = g_large = 0;
  g_own_example = nullptr;
  g_counting = true;
  for (int i = 0; i < runs; ++i) s.run(feeds);
  g_counting = false;
  Counts c{g_own.load(), g_library.load(), g_large.load()};
  if (c.own) {
    Dl_info info{};
    dladdr(g_own_example, &info);
    std::printf("%s: first allocation by minnow code at %p (%s %s)\n", model.c_str(), g_own_example,
                info.dli_fname ? info.dli_fname : "?", info.dli_sname ? info.dli_sname : "?");
  }
  std::printf("%s batch %lld: per run %.1f allocations inside oneDNN/libgomp\n", model.c_str(),
              static_cast<long long>(batch), static_cast<double>(c.library) / runs);
  return c;
}

TEST(NoAllocation, CountingAllocatorSeesAllocations) {
  g_own = 0;
  g_counting = true;
  void* p = std::malloc(100);
  auto* q = new std::vector<int>(10);
  g_counting = false;
  std::free(p);
  delete q;
  EXPECT_GE(g_own.load(), 2);
}

TEST(NoAllocation, ZooModelsRunWithoutAllocating) {
  for (const auto& [model, shape, batch] :
       std::vector<std::tuple<std::string, Shape, int64_t>>{{"lenet5", {1, 28, 28}, 1},
                                                            {"lenet5", {1, 28, 28}, 64},
                                                            {"mobilenet_v2", {1, 28, 28}, 1},
                                                            {"mobilenet_v2", {1, 28, 28}, 8},
                                                            {"mobilenet_v2", {1, 28, 28}, 60},
                                                            {"resnet8", {3, 32, 32}, 2}}) {
    const Counts c = allocations_during_runs(model, shape, batch, 5);
    EXPECT_EQ(c.own, 0) << model << " batch " << batch;
    EXPECT_EQ(c.large, 0) << model << " batch " << batch;
  }
}

}  // namespace
}  // namespace minnow
