#pragma once
// tg-gpt tokenizer train|encode|decode (tokenizer_cmd.cpp): byte-level BPE from the command line.

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace tg_gpt {

struct TokenizerArgs {
    CLI::App* command = nullptr;  // `tokenizer`
    CLI::App* train = nullptr;
    CLI::App* encode = nullptr;
    CLI::App* decode = nullptr;
    std::string data, out, tokenizer;
    std::int64_t vocab = 4096;
    bool special = false;
    int threads = 0;
};

// Adds `tokenizer` and its three subcommands to `app`; args must outlive the parse.
void add_tokenizer_command(CLI::App& app, TokenizerArgs& args);
// Runs the parsed subcommand. Reports errors itself: bad files, bad input or ids out of range exit with 2.
int run_tokenizer(const TokenizerArgs& args);

}  // namespace tg_gpt
