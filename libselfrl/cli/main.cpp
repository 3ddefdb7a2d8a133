// `selfrl`: the command-line program. Dispatches to the registered subcommands.
#include <cstdio>
#include <cstring>
#include <cerrno>
#include <csignal>
#include <exception>
#include <filesystem>
#include <iostream>
#include <new>

#include <c10/util/Exception.h>

#include "command.h"
#include "selfrl/core/blas.h"
#include "selfrl/core/host_allocator.h"
#include "selfrl/core/error.h"
#include "selfrl/core/logging.h"
#include "selfrl/version.h"

namespace {

void print_help() {
  std::printf(
      "selfrl %s: language models that improve themselves (GRPO, DPO, STaR/ReST, self-certainty,\n"
      "consensus rewards) on LibTorch.\n\n"
      "usage: selfrl [--version] [--help] [--log-level LEVEL] <command> [args]\n\ncommands:\n",
      selfrl::version());
  for (const auto& [name, cmd] : selfrl::cli::command_registry()) {
    std::printf("  %-12s %s\n", name.c_str(), cmd.summary.c_str());
  }
  std::printf("\nRun 'selfrl <command> --help' for a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace selfrl::cli;
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    while (!args.empty() && args[0].rfind("-", 0) == 0) {
      if (args[0] == "--version" || args[0] == "-V") {
        std::printf("selfrl %s\n", selfrl::version());
        return 0;
      }
      if (args[0] == "--help" || args[0] == "-h") {
        print_help();
        return 0;
      }
      if (args[0] == "--log-level" && args.size() >= 2) {
        selfrl::set_log_level(selfrl::parse_log_level(args[1]));
        args.erase(args.begin(), args.begin() + 2);
        continue;
      }
      throw selfrl::Error("unknown option '" + args[0] + "'").hint("run 'selfrl --help'");
    }
    if (args.empty()) {
      print_help();
      return 2;
    }
    auto& registry = command_registry();
    auto it = registry.find(args[0]);
    if (it == registry.end()) {
      std::string best;
      size_t best_d = 3;
      for (const auto& [name, cmd] : registry) {
        const size_t d = edit_distance(args[0], name);
        if (d < best_d) {
          best_d = d;
          best = name;
        }
      }
      throw selfrl::Error("unknown command '" + args[0] + "'")
          .hint(best.empty() ? "run 'selfrl --help' for the commands" : "did you mean '" + best + "'?");
    }
    // Past a file size limit (ulimit -f, RLIMIT_FSIZE) a write then fails with EFBIG, which the
    // writers report naming the file, instead of the signal killing the process mid-write.
    std::signal(SIGXFSZ, SIG_IGN);
    selfrl::warn_if_slow_blas();
    selfrl::tune_host_allocator();
    const int rc = it->second.run(std::vector<std::string>(args.begin() + 1, args.end()));
    // Output that did not reach its destination (a full disk behind a redirect, /dev/full) is a
    // failure, not a success with a shorter file.
    std::cout.flush();
    errno = 0;
    if (std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout) {
      std::fprintf(stderr, "selfrl: error: writing to standard output failed: %s\n",
                   errno != 0 ? std::strerror(errno) : "stream error");
      return 1;
    }
    return rc;
  } catch (const selfrl::Error& e) {
    std::fprintf(stderr, "selfrl: error: %s\n", e.what());
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    // A path that cannot be used (under a regular file, a symlink loop, no permission).
    std::fprintf(stderr, "selfrl: error: %s: %s\n", e.path1().c_str(), e.code().message().c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr,
                 "selfrl: error: out of memory (a size in the model config, recipe or input is larger "
                 "than this machine can hold)\n");
    return 1;
  } catch (const c10::Error& e) {
    // LibTorch's allocators throw c10::Error, not std::bad_alloc, when a tensor does not fit: a
    // size taken from an input, not a bug, so it is reported as such.
    const std::string msg = e.what_without_backtrace();
    if (msg.find("can't allocate memory") != std::string::npos || msg.find("out of memory") != std::string::npos) {
      // "... you tried to allocate 800000000000 bytes. Error code 12 ..." -> the size.
      std::string size;
      if (const auto at = msg.find("you tried to allocate"); at != std::string::npos)
        size =
            ": " + msg.substr(at, msg.find('.', at) == std::string::npos ? std::string::npos : msg.find('.', at) - at);
      std::fprintf(stderr,
                   "selfrl: error: out of memory%s (a size in the model config, recipe, adapter, input or "
                   "command-line options is larger than this machine can hold)\n",
                   size.c_str());
      return 1;
    }
    std::fprintf(stderr, "selfrl: internal error: %s\n", msg.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "selfrl: internal error: %s\n", e.what());
    return 1;
  }
}
