#include "cli.h"

#include "core/error.h"
#include "core/threading.h"
#include "nn/optim/guard.h"

#include <unistd.h>

#include <cmath>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <new>
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

const CLI::Validator FiniteNumber(
    [](std::string& text) {
        double value = 0;
        if (!CLI::detail::lexical_cast(text, value)) return std::string();  // not a number: the option's own error
        return std::isfinite(value) ? std::string() : "must be a finite number, got " + text;
    },
    "FINITE", "FiniteNumber");

const CLI::Validator NonNegativeInteger(
    [](std::string& text) {
        const std::size_t first = text.find_first_not_of(" \t");
        return first != std::string::npos && text[first] == '-' ? "must be >= 0, got " + text : std::string();
    },
    "", "NonNegativeInteger");

void check_numbers(CLI::App& app) {
    for (CLI::Option* option : app.get_options()) {
        const std::string type = option->get_type_name();
        if (type.rfind("FLOAT", 0) == 0) option->check(FiniteNumber);
        if (type.rfind("UINT", 0) == 0) option->check(NonNegativeInteger);
    }
    for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) check_numbers(*sub);
}

double finite_from(const std::string& name, const std::string& text) {
    std::size_t end = 0;
    double value = 0;
    try {
        value = std::stod(text, &end);
    } catch (const std::exception&) {
        end = 0;
    }
    if (text.empty() || end != text.size()) throw tg::ValueError("option --" + name + " expects a number, got '" + text + "'");
    if (!std::isfinite(value)) throw tg::ValueError("option --" + name + " must be a finite number, got '" + text + "'");
    return value;
}

void check_writable_folder(const std::string& program, const std::string& folder) {
    std::error_code ec;
    std::filesystem::create_directories(folder, ec);
    if (ec) throw tg::IOError(program + ": " + folder + ": cannot create the folder: " + ec.message());
    if (!std::filesystem::is_directory(folder)) throw tg::IOError(program + ": " + folder + ": not a folder");
    if (::access(folder.c_str(), W_OK | X_OK) != 0) {
        throw tg::IOError(program + ": " + folder + ": cannot write into the folder: " + std::strerror(errno));
    }
}

int parse(CLI::App& app, int argc, const char* const* argv) {
    check_numbers(app);
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
    } catch (const tg::optim::NonFiniteError& e) {  // a diverged run: a failure at run time, not bad input
        std::fflush(stdout);
        std::fprintf(stderr, "\n%s: error: %s\n", program.c_str(), e.what());
        return kExitFailure;
    } catch (const tg::Error& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "\n%s: error: %s\n", program.c_str(), e.what());
        return kExitBadInput;
    } catch (const CLI::ParseError& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "\n%s: error: %s\n", program.c_str(), e.what());
        return kExitBadInput;
    } catch (const std::bad_alloc&) {
        std::fflush(stdout);
        std::fprintf(stderr, "\n%s: error: out of memory: the run needs more memory than this machine can give "
                     "(use smaller sizes: --batch, --seq, --eval-batches, --tokens, ...)\n", program.c_str());
        return kExitFailure;
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
