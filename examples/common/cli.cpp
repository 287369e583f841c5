#include "cli.h"

#include "core/error.h"
#include "core/threading.h"

#include <unistd.h>

#include <cmath>
#include <exception>
#include <thread>

namespace tg::cli {

namespace {

std::string meaning(const std::string& base, const std::string& what) {
    return what.empty() ? base : what + " (" + base + ")";
}

}  // namespace

CLI::Option* add_threads(CLI::App& app, int& value) {
    return app.add_option("--threads", value, "worker threads of the kernels (0: all cores)")
        ->check(CLI::Range(0, 4096))
        ->capture_default_str();
}

CLI::Option* add_seed(CLI::App& app, std::uint64_t& value, const std::string& what) {
    return app.add_option("--seed", value, meaning("seed of the run's random numbers", what))->capture_default_str();
}

CLI::Option* add_json(CLI::App& app, bool& value, const std::string& what) {
    return app.add_flag("--json", value, meaning("one JSON object per line on stdout", what));
}

CLI::Option* add_out(CLI::App& app, std::string& value, const std::string& what) {
    return app.add_option("--out", value, what);
}

int apply_threads(int threads) {
    if (threads < 0) {
        throw tg::ValueError("--threads must be 0 (all cores) or a positive count, got " +
                             std::to_string(threads));
    }
    if (threads > 0) tg::set_num_threads(threads);
    return tg::get_num_threads();
}

int threads_from(const std::string& text) {
    std::size_t end = 0;
    long long value = -1;
    try {
        value = std::stoll(text, &end);
    } catch (const std::exception&) {
        end = 0;
    }
    if (end != text.size() || value < 0 || value > 4096) {
        throw tg::ValueError("--threads must be 0 (all cores) or a count up to 4096, got '" + text + "'");
    }
    return static_cast<int>(value);
}

int parse(CLI::App& app, int argc, const char* const* argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? kExitOk : kExitBadInput;  // --help is a ParseError that exits 0
    }
    return -1;
}

int run_main(const std::string& program, const std::function<int()>& body) {
    try {
        return body();
    } catch (const tg::Error& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "\n%s: error: %s\n", program.c_str(), e.what());
        return kExitBadInput;
    } catch (const CLI::ParseError& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "\n%s: error: %s\n", program.c_str(), e.what());
        return kExitBadInput;
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "\n%s: unexpected error: %s\n", program.c_str(), e.what());
        return kExitFailure;
    }
}

ProgressLine::ProgressLine() : terminal_(::isatty(STDERR_FILENO) != 0) {}

void ProgressLine::show(const std::string& text) {
    if (!terminal_) return;
    std::fprintf(stderr, "\r%s   ", text.c_str());
    std::fflush(stderr);
    open_ = true;
}

void ProgressLine::keep(const std::string& text) {
    std::fprintf(stderr, terminal_ ? "\r%s   \n" : "%s\n", text.c_str());
    std::fflush(stderr);
    open_ = false;
}

void ProgressLine::break_line() {
    if (!open_) return;
    std::fputc('\n', stderr);
    open_ = false;
}

std::string format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "?";
    const auto s = static_cast<long long>(std::llround(seconds));
    char buf[32];
    if (s >= 3600) std::snprintf(buf, sizeof(buf), "%lldh%02lldm", s / 3600, (s % 3600) / 60);
    else if (s >= 60) std::snprintf(buf, sizeof(buf), "%lldm%02llds", s / 60, s % 60);
    else std::snprintf(buf, sizeof(buf), "%llds", s);
    return buf;
}

}  // namespace tg::cli
