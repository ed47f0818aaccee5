// minnow bench: inference latency (p50/p90/p99), throughput, model size and peak memory.
#include <cstdio>
#include <memory>

#include "cli_common.h"
#include "minnow/error.h"
#include "runtime/benchmark.h"

namespace minnow::cli {
namespace {

struct BenchArgs {
  std::string model, report;
  BenchOptions options;
  int threads = 2;
  bool profile = false;
};

// Per-node table: the session times every kernel during `iters` more runs (after the measured
// ones, so that the clock reads do not change the latency figures above).
void print_profile(InferenceSession& session, const BenchOptions& options) {
  session.set_profiling(true);
  BenchOptions more = options;
  more.warmup = 0;
  benchmark_session(session, more);
  session.set_profiling(false);
  std::vector<InferenceSession::NodeTime> times = session.node_times();
  double total = 0;
  for (const auto& t : times) total += t.total_ms;
  std::printf("\nper node (mean over %d runs; optimized graph, execution order):\n", more.iters);
  std::printf("  %-40s %-18s %10s %7s\n", "node", "op", "us", "share");
  for (const auto& t : times) {
    if (t.calls == 0) continue;
    std::printf("  %-40s %-18s %10.2f %6.1f%%\n", t.node.c_str(), t.op.c_str(),
                1000.0 * t.total_ms / more.iters, total > 0 ? 100.0 * t.total_ms / total : 0.0);
  }
  std::printf("  %-40s %-18s %10.2f\n", "sum", "", 1000.0 * total / more.iters);
}

void run_bench(const BenchArgs& a) {
  set_threads(a.threads);
  LoadedModel m = load_model(a.model, zoo::ZooOptions{});
  InferenceSession session(m.graph);
  BenchResult r = benchmark_session(session, a.options);
  const int64_t rss = peak_rss_bytes();
  std::printf("%s: batch %lld, %d threads, %d runs after %d warm-up\n", m.source.c_str(),
              static_cast<long long>(r.batch), a.threads, r.iters, a.options.warmup);
  std::printf("latency ms: p50 %.3f  p90 %.3f  p99 %.3f  mean %.3f  min %.3f\n", r.p50_ms, r.p90_ms,
              r.p99_ms, r.mean_ms, r.min_ms);
  std::printf("throughput: %.1f samples/s\n", r.samples_per_s);
  if (m.file_bytes) std::printf("model file: %lld bytes\n", static_cast<long long>(m.file_bytes));
  std::printf("activation arena: %.2f MB (separate buffers: %.2f MB)\n",
              static_cast<double>(session.arena_bytes()) / (1 << 20),
              static_cast<double>(session.unshared_bytes()) / (1 << 20));
  std::printf("peak resident memory: %.1f MB\n", static_cast<double>(rss) / (1 << 20));
  if (a.profile) print_profile(session, a.options);
  write_report(a.report, {{"model", m.source},
                          {"batch", r.batch},
                          {"threads", a.threads},
                          {"iters", r.iters},
                          {"warmup", a.options.warmup},
                          {"latency_ms_p50", r.p50_ms},
                          {"latency_ms_p90", r.p90_ms},
                          {"latency_ms_p99", r.p99_ms},
                          {"latency_ms_mean", r.mean_ms},
                          {"latency_ms_min", r.min_ms},
                          {"samples_per_s", r.samples_per_s},
                          {"file_bytes", m.file_bytes},
                          {"params", m.graph.num_params()},
                          {"arena_bytes", session.arena_bytes()},
                          {"unshared_activation_bytes", session.unshared_bytes()},
                          {"peak_rss_bytes", rss}});
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* c = app.add_subcommand(
      "bench", "Inference latency p50/p90/p99, throughput, model size and peak memory");
  c->add_option("model", a->model, "Model (.mnw or .onnx file, or zoo name)")->required();
  c->add_option("--batch", a->options.batch, "Samples per run")->capture_default_str();
  c->add_option("--threads", a->threads, "Threads")->capture_default_str();
  c->add_option("--iters", a->options.iters, "Timed runs")->capture_default_str();
  c->add_option("--warmup", a->options.warmup, "Untimed runs first")->capture_default_str();
  c->add_option("--report-json", a->report, "Write a JSON report");
  c->add_flag("--profile", a->profile, "Also print the time of every node (separate timed runs)");
  c->callback([a] { run_bench(*a); });
}

}  // namespace minnow::cli
