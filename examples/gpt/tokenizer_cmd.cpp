// tg-gpt tokenizer: train a byte-level BPE vocabulary, encode text to ids, decode ids to text (interfaces fixed in
// the design's interfaces.md; docs/tokenizer.md explains them).
//
//   tg-gpt tokenizer train  --data /usr/share/games/fortunes --vocab 4096 --out tokenizer.json
//   echo "Hello world" | tg-gpt tokenizer encode --tokenizer tokenizer.json      -> [15496, 995, 198]
//   echo "[15496, 995]" | tg-gpt tokenizer decode --tokenizer tokenizer.json     -> Hello world

#include "tokenizer_cmd.h"

#include "examples/common/cli.h"

#include "nn/data/bpe.h"
#include "nn/data/bpe_train.h"
#include "nn/data/text_corpus.h"
#include "nn/data/tokenizer.h"

#include <tapegrad/tapegrad.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>

namespace tg_gpt {

void add_tokenizer_command(CLI::App& app, TokenizerArgs& a) {
    a.command = app.add_subcommand("tokenizer", "train a byte-level BPE tokenizer, or encode/decode with one");
    a.command->require_subcommand(1);

    a.train = a.command->add_subcommand("train", "learn a BPE vocabulary on a corpus, write it as tokenizer.json");
    a.train->add_option("--data", a.data, std::string("a text file or a folder of text files (default: ") +
                                              tg::data::kDefaultCorpusPath + ")");
    a.train->add_option("--vocab", a.vocab, "vocabulary size: 256 bytes + merges + <|endoftext|>")
        ->capture_default_str()->check(CLI::Range(257, 1 << 24));
    tg::cli::add_out(*a.train, a.out, "the tokenizer.json to write (Hugging Face format)")->required();
    tg::cli::add_threads(*a.train, a.threads);

    a.encode = a.command->add_subcommand("encode", "UTF-8 text on stdin -> a JSON array of token ids on stdout");
    a.encode->add_option("--tokenizer", a.tokenizer, "a tokenizer.json, or a folder with encoder.json + vocab.bpe")
        ->required();
    a.encode->add_flag("--special", a.special, "turn special-token text such as <|endoftext|> into its id");

    a.decode = a.command->add_subcommand("decode", "a JSON array of token ids on stdin -> the text on stdout");
    a.decode->add_option("--tokenizer", a.tokenizer, "a tokenizer.json, or a folder with encoder.json + vocab.bpe")
        ->required();
}

namespace {

std::string read_stdin() {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    return text;
}

int train(const TokenizerArgs& a) {
    tg::cli::apply_threads(a.threads);
    const tg::data::BpeTrainOptions options{a.vocab, {"<|endoftext|>"}, 2};
    // Fortunes (and files) are separated by <|endoftext|>: the trainer never merges across two documents.
    const tg::data::TextCorpus corpus =
        tg::data::load_text_corpus(a.data.empty() ? tg::data::kDefaultCorpusPath : a.data, options.special_tokens[0]);
    const auto start = std::chrono::steady_clock::now();
    const tg::data::Tokenizer tokenizer = tg::data::Tokenizer::bpe(tg::data::train_bpe(corpus.text, options));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    tokenizer.save(a.out);
    const std::size_t merges = tokenizer.bpe_model()->merges().size();
    std::fprintf(stderr, "tokenizer: %s: %zu files, %zu bytes -> %lld tokens (%zu merges) in %.2f s, written to %s\n",
                 corpus.path.c_str(), corpus.files.size(), corpus.text.size(),
                 static_cast<long long>(tokenizer.vocab_size()), merges, seconds, a.out.c_str());
    if (tokenizer.vocab_size() < a.vocab) {
        std::fprintf(stderr, "tokenizer: note: only %lld of the %lld tokens asked for: no pair occurs twice any more\n",
                     static_cast<long long>(tokenizer.vocab_size()), static_cast<long long>(a.vocab));
    }
    return 0;
}

int encode(const TokenizerArgs& a) {
    const tg::data::Tokenizer tokenizer = tg::data::Tokenizer::load(a.tokenizer);
    const std::string text = read_stdin();
    const std::vector<std::int64_t> ids = a.special ? tokenizer.encode_with_special_tokens(text) : tokenizer.encode(text);
    std::string out = "[";
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (i) out += ", ";
        out += std::to_string(ids[i]);
    }
    out += "]\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

int decode(const TokenizerArgs& a) {
    const tg::data::Tokenizer tokenizer = tg::data::Tokenizer::load(a.tokenizer);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(read_stdin());
    } catch (const nlohmann::json::exception& e) {
        throw tg::ValueError(std::string("stdin is not JSON: ") + e.what());
    }
    if (!j.is_array()) throw tg::ValueError("stdin must hold one JSON array of token ids, got " + j.dump().substr(0, 80));
    std::vector<std::int64_t> ids;
    for (const auto& v : j) {
        if (!v.is_number_integer()) throw tg::ValueError("token ids must be integers, got " + v.dump());
        ids.push_back(v.get<std::int64_t>());
    }
    const std::string text = tokenizer.decode(ids);  // IndexError naming an id out of range
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
}

}  // namespace

int run_tokenizer(const TokenizerArgs& a) {
    const char* sub = a.train->parsed() ? "train" : a.encode->parsed() ? "encode" : "decode";
    return tg::cli::run_main(std::string("tg-gpt tokenizer ") + sub, [&] {  // tg::Error -> exit status 2
        if (a.train->parsed()) return train(a);
        if (a.encode->parsed()) return encode(a);
        return decode(a);
    });
}

}  // namespace tg_gpt
