// The command-line helper every program shares (examples/common/cli.h): the common flags, the exit statuses
// and the duration format.

#include "examples/common/cli.h"

#include "core/error.h"
#include "core/threading.h"

#include <doctest/doctest.h>

#include <new>
#include <stdexcept>

TEST_SUITE("cli") {

TEST_CASE("run_main: 0 ok, 2 for a tg::Error (bad input), 1 for any other failure") {
    CHECK(tg::cli::run_main("test", [] { return 0; }) == tg::cli::kExitOk);
    CHECK(tg::cli::run_main("test", [] { return 3; }) == 3);  // the body's own status passes through
    CHECK(tg::cli::run_main("test", []() -> int { throw tg::ShapeError("bad shape"); }) == tg::cli::kExitBadInput);
    CHECK(tg::cli::run_main("test", []() -> int { throw tg::IOError("bad file"); }) == tg::cli::kExitBadInput);
    CHECK(tg::cli::run_main("test", []() -> int { throw std::bad_alloc(); }) == tg::cli::kExitFailure);
    CHECK(tg::cli::run_main("test", []() -> int { throw std::logic_error("bug"); }) == tg::cli::kExitFailure);
}

TEST_CASE("the common flags parse the same way in every program") {
    int threads = -1;
    std::uint64_t seed = 7;
    bool json = false;
    std::string out;
    const auto make = [&](CLI::App& app) {
        tg::cli::add_threads(app, threads);
        tg::cli::add_seed(app, seed);
        tg::cli::add_json(app, json);
        tg::cli::add_out(app, out, "where to write");
    };
    {
        CLI::App app{"test"};
        make(app);
        const char* argv[] = {"prog", "--threads", "2", "--seed", "42", "--json", "--out", "dir"};
        CHECK(tg::cli::parse(app, 8, argv) == -1);
        CHECK(threads == 2);
        CHECK(seed == 42);
        CHECK(json);
        CHECK(out == "dir");
    }
    {
        CLI::App app{"test"};
        make(app);
        const char* argv[] = {"prog", "--threads", "-1"};
        CHECK(tg::cli::parse(app, 3, argv) == tg::cli::kExitBadInput);  // refused by the flag's check
    }
    {
        CLI::App app{"test"};
        make(app);
        const char* argv[] = {"prog", "--no-such-flag"};
        CHECK(tg::cli::parse(app, 2, argv) == tg::cli::kExitBadInput);
    }
}

TEST_CASE("threads: 0 means all cores, text must be a whole number") {
    CHECK(tg::cli::threads_from("0") == 0);
    CHECK(tg::cli::threads_from("3") == 3);
    CHECK_THROWS_AS(tg::cli::threads_from(""), tg::ValueError);
    CHECK_THROWS_AS(tg::cli::threads_from("2x"), tg::ValueError);
    CHECK_THROWS_AS(tg::cli::threads_from("-1"), tg::ValueError);
    CHECK_THROWS_WITH_AS(tg::cli::apply_threads(-2), doctest::Contains("--threads must be"), tg::ValueError);
    const int before = tg::get_num_threads();
    CHECK(tg::cli::apply_threads(0) == before);  // 0 leaves the cap as it is
}

TEST_CASE("format_duration") {
    CHECK(tg::cli::format_duration(12.4) == "12s");
    CHECK(tg::cli::format_duration(187) == "3m07s");
    CHECK(tg::cli::format_duration(3720) == "1h02m");
    CHECK(tg::cli::format_duration(-1) == "?");
}

}  // TEST_SUITE
