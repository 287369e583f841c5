#pragma once
// The benchmark harness shared by every tg-bench suite: argument parsing, median timing after warm-up, and
// one output line per measurement (JSON with --json, a readable table row otherwise).

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace tg::bench {

// Command-line options of the form `--name value` and bare flags `--name`.
class Args {
public:
    Args(int argc, char** argv, int first);
    bool flag(const std::string& name) const;  // present (with or without a value)
    std::int64_t get_int(const std::string& name, std::int64_t fallback) const;
    double get_double(const std::string& name, double fallback) const;
    std::string get(const std::string& name, const std::string& fallback) const;
    // Names the suite did not read: reported as an error so a typo never silently benchmarks the default.
    // Options come back as "--name", stray non-option arguments quoted ("'1024'").
    std::vector<std::string> unused() const;

private:
    std::map<std::string, std::string> values_;
    mutable std::map<std::string, bool> used_;
    std::vector<std::string> stray_;  // arguments that are not options: always reported by unused()
};

// Prints "tg-bench SUITE: unknown option --x" for every option the suite did not read; true if there were any.
// Suites call it after reading their options and before measuring, then return 2.
bool report_unused(const Args& args, const std::string& suite);

// Runs fn `warmup` times, then until both `min_runs` runs and `min_seconds` have passed (capped at
// `max_runs`); returns the median time in milliseconds.
double median_ms(const std::function<void()>& fn, int warmup = 2, int min_runs = 5, double min_seconds = 0.3,
                 int max_runs = 200);

// The same, also timing the process's CPU time. On a machine shared with other jobs the wall-clock time
// includes the time our threads waited for a core; cpu_ms = CPU time / threads does not, and equals ms on an
// idle machine when all `threads` threads are busy (it undercounts when some of them sleep, e.g. in tiny
// products that run serially).
struct Timing {
    double ms;      // median wall-clock time per run
    double cpu_ms;  // median process CPU time per run, divided by `threads`
    double min_ms;  // fastest run, wall clock
};
Timing median_timing(const std::function<void()>& fn, int threads, int warmup = 2, int min_runs = 5,
                     double min_seconds = 0.3, int max_runs = 200);

// One result line. Fields keep their insertion order so the JSON reads like interfaces.md.
class Record {
public:
    Record& set(const std::string& key, const std::string& value);
    Record& set(const std::string& key, const char* value) { return set(key, std::string(value)); }
    Record& set(const std::string& key, double value);
    Record& set(const std::string& key, std::int64_t value);
    Record& set(const std::string& key, int value) { return set(key, static_cast<std::int64_t>(value)); }
    Record& set(const std::string& key, bool value);
    Record& set_raw(const std::string& key, const std::string& json);  // nested object, already JSON
    std::string json() const;
    std::string table() const;

private:
    std::vector<std::pair<std::string, std::string>> fields_;  // key -> JSON text of the value
};

// Prints a record as JSON (--json) or a table row.
void emit(const Record& record, bool json);

// The machine line printed first: CPU model, ISA compiled for, threads.
Record machine_record(int threads);

// A suite: reads its options from args, prints its records, returns a process exit status.
using Suite = std::function<int(const Args& args, bool json, int threads)>;

int run_peak(const Args& args, bool json, int threads);
// MPI allreduce over the ranks of `mpirun -np N tg-bench allreduce` (bench_allreduce.cpp).
int run_allreduce(const Args& args, bool json, int threads);
int run_gemm(const Args& args, bool json, int threads);
int run_kernels(const Args& args, bool json, int threads);
int run_attention(const Args& args, bool json, int threads);
int run_gpt(const Args& args, bool json, int threads);
int run_vit(const Args& args, bool json, int threads);
int run_tokenizer(const Args& args, bool json, int threads);

}  // namespace tg::bench
