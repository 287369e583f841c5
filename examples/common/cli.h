#pragma once
// The command-line conventions every tapegrad program shares (tg-gpt, tg-vit, tg-attention, tg-bench), so a
// flag means the same thing, reads the same in --help and fails the same way everywhere:
//
//   --threads P   worker threads of every kernel; 0 (the default) = all cores
//   --seed S      seed of everything random in the run (weights, data order, dropout, sampling)
//   --json        machine-readable lines on stdout (one JSON object per line); human text goes to stderr
//   --out PATH    where results are written (a checkpoint folder, a file)
//   progress      one line on stderr, rewritten in place on a terminal, printed at checkpoints otherwise
//   exit status   0 ok, 1 a failure at run time, 2 bad input (a bad flag, file, shape or value)
//
// Programs built on CLI11 add the flags with add_threads/add_seed/add_json/add_out and wrap their work in
// run_main; tg-bench, whose suites parse their own options, uses threads_from/run_main directly.

#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace tg::cli {

// The process exit statuses of every program.
enum ExitStatus : int {
    kExitOk = 0,
    kExitFailure = 1,   // something went wrong while running (out of memory, an internal error)
    kExitBadInput = 2,  // the input was refused: a bad flag, file, tensor shape or value (a tg::Error)
};

// ---- the common flags ---------------------------------------------------------------------------------------------
// Each adds the flag to `app` bound to `value`, with the shared name, help text and check; `what` (when not
// empty) says what the flag means in this program, e.g. "checkpoint folder".
CLI::Option* add_threads(CLI::App& app, int& value);
CLI::Option* add_seed(CLI::App& app, std::uint64_t& value, const std::string& what = "");
CLI::Option* add_json(CLI::App& app, bool& value, const std::string& what = "");
CLI::Option* add_out(CLI::App& app, std::string& value, const std::string& what);

// Caps the kernels' worker threads: 0 means all cores (the default), a negative count throws
// tg::ValueError. Returns the count in force.
int apply_threads(int threads);

// --threads for a program that parses its own options: `text` must be a whole number from 0 (all cores) to
// 4096 (tg::ValueError otherwise).
int threads_from(const std::string& text);

// ---- numbers on the command line ------------------------------------------------------------------------------
// No option of our programs means anything with NaN or ±Inf, yet CLI11 reads "nan" and "inf" into a double and
// its PositiveNumber and Range checks let them through (NaN compares false with everything). And "-1" read
// into an unsigned integer wraps to 2^64 − 1. parse() therefore adds, to every option of every subcommand,
// FiniteNumber to floating-point ones and NonNegativeInteger to unsigned ones: one rule for every program,
// including options added later.
extern const CLI::Validator FiniteNumber;
extern const CLI::Validator NonNegativeInteger;
void check_numbers(CLI::App& app);
// The same for a program that parses its own options (tg-bench): `text` as a finite double, or
// tg::ValueError naming --`name`.
double finite_from(const std::string& name, const std::string& text);

// ---- output folders -------------------------------------------------------------------------------------------------
// Creates `folder` if needed and checks that files can be created in it, so an unwritable --out fails before
// the work starts rather than at the first save. Throws tg::IOError "<program>: <folder>: ...".
void check_writable_folder(const std::string& program, const std::string& folder);

// ---- exit statuses ------------------------------------------------------------------------------------------------
// Parses argv into app (after check_numbers): --help prints and returns kExitOk; a parse error prints CLI11's
// message and returns kExitBadInput; -1 means parsed, go on.
int parse(CLI::App& app, int argc, const char* const* argv);

// Runs `body` and turns what it throws into a message "PROGRAM: error: ..." on stderr and an exit status:
// tg::Error (and CLI11's parse errors) -> kExitBadInput, any other exception -> kExitFailure. Running out of
// memory (std::bad_alloc) gets a message of its own: the programs estimate their memory before they start
// (examples/common/memory.h), so this is the fallback for what no estimate foresaw. stdout is flushed first so
// the message follows everything printed before it.
int run_main(const std::string& program, const std::function<int()>& body);

// ---- the progress line ---------------------------------------------------------------------------------------------
// One status line on stderr. On a terminal, show() rewrites it in place ("\r"); elsewhere (a log file, a
// pipe) only keep() prints it, so logs get one line per checkpoint instead of one per step.
class ProgressLine {
public:
    ProgressLine();  // looks at whether stderr is a terminal
    explicit ProgressLine(bool terminal) : terminal_(terminal) {}
    bool terminal() const { return terminal_; }
    void show(const std::string& text);  // transient: replaced by the next show()
    void keep(const std::string& text);  // permanent: stays in the log on its own line
    // Ends a transient line with a newline so the next message starts on a line of its own.
    void break_line();

private:
    bool terminal_;
    bool open_ = false;  // a transient line is on the screen
};

// "3m07s", "1h02m", "12s" ("?" for a negative or non-finite time).
std::string format_duration(double seconds);

}  // namespace tg::cli
