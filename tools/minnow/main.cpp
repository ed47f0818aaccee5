// minnow — one CLI for the whole small-model chain. Exit codes: 0 ok, 2 user error (bad input,
// bad flag), 1 internal error.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "cli_common.h"
#include "minnow/error.h"

int main(int argc, char** argv) {
  CLI::App app{"minnow: build, train, compress and deploy small neural networks"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "minnow 0.1.0");
  minnow::cli::add_train_command(app);
  minnow::cli::add_eval_command(app);
  minnow::cli::add_inspect_command(app);
  minnow::cli::add_run_command(app);
  minnow::cli::add_zoo_command(app);
  minnow::cli::add_bench_command(app);
  minnow::cli::add_convert_command(app);
  minnow::cli::add_export_command(app);
  minnow::cli::add_factorize_command(app);
  minnow::cli::add_cluster_command(app);
  minnow::cli::add_quantize_command(app);
  minnow::cli::add_qat_command(app);
  minnow::cli::add_distill_command(app);
  minnow::cli::add_finetune_command(app);
  minnow::cli::add_merge_lora_command(app);
  minnow::cli::add_prune_command(app);
  // CLI11 reports an unknown command as "A subcommand is required"; name it instead.
  if (argc > 1 && argv[1][0] != '-') {
    std::string names;
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
      known = known || sub->get_name() == argv[1];
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      std::fprintf(stderr, "minnow: error: unknown command '%s' (commands: %s)\n", argv[1],
                   names.c_str());
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "minnow: error: %s\n", e.what());
    return 2;
  } catch (const minnow::Error& e) {
    std::fprintf(stderr, "minnow: error: %s\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "minnow: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "minnow: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
