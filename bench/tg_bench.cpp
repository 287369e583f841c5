// tg-bench: the benchmark driver. `tg-bench SUITE [options] [--json]` runs one suite and prints one record per
// measurement, after a first record describing the machine. The formats are stable: scripts and cross-checks
// parse them (docs/performance.md says how the numbers are used).

#include "bench/bench.h"
#include "examples/common/cli.h"

#include "core/error.h"
#include "core/threading.h"
#include "distributed/communicator.h"

#include <xsimd/xsimd.hpp>

#include <cmath>
#include <ctime>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <stdexcept>
#include <thread>

namespace tg::bench {

// ---------------------------------------------------------------------------------------------------------
// Args

Args::Args(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) {
        const std::string token = argv[i];
        if (token.rfind("--", 0) != 0 || token.size() == 2) {
            stray_.push_back("'" + token + "'");
            continue;
        }
        std::string name = token.substr(2);
        std::string value;
        if (const auto eq = name.find('='); eq != std::string::npos) {  // --name=value
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        } else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {  // --name value
            value = argv[++i];
        }
        values_[name] = value;
    }
}

bool Args::flag(const std::string& name) const {
    const bool present = values_.count(name) != 0;
    if (present) used_[name] = true;
    return present;
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
    const auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    used_[name] = true;
    return it->second;
}

std::int64_t Args::get_int(const std::string& name, std::int64_t fallback) const {
    const std::string text = get(name, "");
    if (values_.count(name) == 0) return fallback;
    std::size_t end = 0;
    std::int64_t value = 0;
    try {
        value = std::stoll(text, &end);
    } catch (const std::exception&) {
        end = 0;
    }
    if (text.empty() || end != text.size()) {
        throw tg::ValueError("option --" + name + " expects an integer, got '" + text + "'");
    }
    return value;
}

double Args::get_double(const std::string& name, double fallback) const {
    const std::string text = get(name, "");
    if (values_.count(name) == 0) return fallback;
    return tg::cli::finite_from(name, text);  // "nan" and "inf" are refused too
}

std::vector<std::string> Args::unused() const {
    std::vector<std::string> names;
    for (const auto& [name, value] : values_) {
        if (used_.count(name) == 0) names.push_back("--" + name);
    }
    names.insert(names.end(), stray_.begin(), stray_.end());
    return names;
}

bool report_unused(const Args& args, const std::string& suite) {
    const auto names = args.unused();
    for (const auto& name : names) {
        std::cerr << "tg-bench " << suite << ": unknown " << (name.front() == '-' ? "option " : "argument ") << name
                  << "\n";
    }
    return !names.empty();
}

// ---------------------------------------------------------------------------------------------------------
// Timing

namespace {

double process_cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    const std::size_t n = values.size();
    return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

}  // namespace

Timing median_timing(const std::function<void()>& fn, int threads, int warmup, int min_runs, double min_seconds,
                     int max_runs) {
    using Clock = std::chrono::steady_clock;
    for (int i = 0; i < warmup; ++i) fn();
    std::vector<double> wall, cpu;
    const auto start = Clock::now();
    while (static_cast<int>(wall.size()) < max_runs) {
        const double c0 = process_cpu_seconds();
        const auto t0 = Clock::now();
        fn();
        const auto t1 = Clock::now();
        const double c1 = process_cpu_seconds();
        wall.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        cpu.push_back(1e3 * (c1 - c0) / threads);
        const double elapsed = std::chrono::duration<double>(t1 - start).count();
        if (static_cast<int>(wall.size()) >= min_runs && elapsed >= min_seconds) break;
    }
    return {median(wall), median(cpu), *std::min_element(wall.begin(), wall.end())};
}

double median_ms(const std::function<void()>& fn, int warmup, int min_runs, double min_seconds, int max_runs) {
    return median_timing(fn, 1, warmup, min_runs, min_seconds, max_runs).ms;
}

// ---------------------------------------------------------------------------------------------------------
// Records

namespace {

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (const char ch : s) {
        switch (ch) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(ch) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", ch);
                    out += buf;
                } else {
                    out += ch;
                }
        }
    }
    return out + "\"";
}

}  // namespace

Record& Record::set(const std::string& key, const std::string& value) { return set_raw(key, json_string(value)); }

Record& Record::set(const std::string& key, double value) {
    if (!std::isfinite(value)) return set_raw(key, "null");  // JSON has no NaN or infinity
    std::ostringstream text;
    text << std::setprecision(6) << value;
    return set_raw(key, text.str());
}

Record& Record::set(const std::string& key, std::int64_t value) { return set_raw(key, std::to_string(value)); }

Record& Record::set(const std::string& key, bool value) { return set_raw(key, value ? "true" : "false"); }

Record& Record::set_raw(const std::string& key, const std::string& json) {
    for (auto& field : fields_) {
        if (field.first == key) {
            field.second = json;
            return *this;
        }
    }
    fields_.emplace_back(key, json);
    return *this;
}

std::string Record::json() const {
    std::string out = "{";
    for (std::size_t i = 0; i < fields_.size(); ++i) {
        if (i > 0) out += ",";
        out += json_string(fields_[i].first) + ":" + fields_[i].second;
    }
    return out + "}";
}

// key=value pairs, strings without their quotes: `gemm  m=1024 n=1024 ... gflops=201.5`.
std::string Record::table() const {
    std::string out;
    for (const auto& [key, value] : fields_) {
        const bool quoted = value.size() >= 2 && value.front() == '"';
        const std::string shown = quoted ? value.substr(1, value.size() - 2) : value;
        if (key == "suite") {
            out = shown + " " + out;
        } else {
            out += " " + key + "=" + shown;
        }
    }
    return out;
}

void emit(const Record& record, bool json) {
    std::cout << (json ? record.json() : record.table()) << std::endl;  // flush: long suites stream results
}

Record machine_record(int threads) {
    std::string cpu = "unknown";
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);) {
        if (line.rfind("model name", 0) == 0) {
            const auto colon = line.find(':');
            if (colon != std::string::npos) cpu = line.substr(line.find_first_not_of(" \t", colon + 1));
            break;
        }
    }
    Record r;
    r.set("suite", "machine");
    r.set("cpu", cpu);
    r.set("cores", static_cast<int>(std::thread::hardware_concurrency()));
    // The instruction set the kernels were compiled for (the meson option `isa`), and its float width.
    r.set("isa", xsimd::default_arch::name());
    r.set("simd_floats", static_cast<int>(xsimd::batch<float>::size));
    r.set("threads", threads);
    return r;
}

}  // namespace tg::bench

namespace {

void usage(std::ostream& out) {
    out << "usage: tg-bench SUITE [options] [--json] [--threads P]\n"
           "suites:\n"
           "  peak                          FP32 FMA peak and stream triad bandwidth\n"
           "  gemm [--m M --n N --k K] [--trans-a] [--trans-b] [--batch B] [--dtype f32|f64] [--a-sums]\n"
           "                                one product (n defaults to m, k to n), or a default sweep\n"
           "  kernels                       the fused nn kernels\n"
           "  attention                     exact and approximate attention (see interfaces.md)\n"
           "  gpt --config S|M [--attention exact|approx_backward|approx] [--degree G] [--steps K]\n"
           "        [--profile]             one GPT training step (forward, backward, AdamW); --profile: where it goes\n"
           "  vit [--batch B] [--dim E] [--layers L] [--heads H] [--mlp M] [--steps K] [--profile]\n"
           "                                one ViT training step, tg-vit's default model and batch\n"
           "  tokenizer [--data PATH] [--tokenizer PATH] [--vocab N]\n"
           "                                byte-level BPE: train, pre-tokenize, encode (1 and P threads), decode\n"
           "  allreduce [--min-bytes B] [--max-bytes B] [--algorithm ring|mpi|both]\n"
           "                                MPI allreduce of 1 KB .. 64 MB (run under mpirun -np N)\n"
           "--threads P caps the worker threads (0, the default: all cores); --json prints one JSON object per line.\n"
           "exit status: 0 ok, 1 failure at run time, 2 bad input (as every tapegrad program).\n";
}

}  // namespace

int main(int argc, char** argv) {
    using namespace tg::bench;
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        usage(argc < 2 ? std::cerr : std::cout);
        return argc < 2 ? tg::cli::kExitBadInput : tg::cli::kExitOk;
    }
    const std::string suite_name = argv[1];
    const std::map<std::string, Suite> suites = {
        {"peak", run_peak},
        {"gemm", run_gemm},
        {"kernels", run_kernels},
        {"attention", run_attention},
        {"gpt", run_gpt},
        {"vit", run_vit},
        {"tokenizer", run_tokenizer},
        {"allreduce", run_allreduce},
    };
    const auto suite = suites.find(suite_name);
    if (suite == suites.end()) {
        std::cerr << "tg-bench: unknown suite '" << suite_name << "'\n";
        usage(std::cerr);
        return tg::cli::kExitBadInput;
    }
    return tg::cli::run_main("tg-bench " + suite_name, [&] {
        const Args args(argc, argv, 2);
        const bool json = args.flag("json");
        const int threads = tg::cli::apply_threads(tg::cli::threads_from(args.get("threads", "0")));
        // Under mpirun every rank runs the suite; only rank 0 prints (interfaces.md, "Distributed").
        if (!tg::distributed::Communicator::world().is_root()) std::cout.setstate(std::ios::badbit);
        emit(machine_record(threads), json);
        const int status = suite->second(args, json, threads);
        // Suites check their own options before running; this catches one that forgot.
        if (status == tg::cli::kExitOk && report_unused(args, suite_name)) return static_cast<int>(tg::cli::kExitBadInput);
        return status;
    });
}
