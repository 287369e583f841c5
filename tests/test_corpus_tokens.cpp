// A corpus encoded piece by piece into narrow ids (nn/data/corpus_tokens.h): the same ids as encoding it whole,
// for the byte, character and BPE tokenizers, on texts whose pieces are cut in awkward places (multi-byte
// characters, invalid bytes, whitespace runs), stored as uint16 (2 bytes a token) and checked on read.

#include "core/error.h"
#include "nn/data/bpe_train.h"
#include "nn/data/corpus_tokens.h"
#include "nn/data/tokenizer.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

using namespace tg::data;

namespace {

// Words, multi-byte characters, an invalid byte, whitespace runs and "x\nB" places where BPE may cut.
std::string awkward_text() {
    std::mt19937 rng(11);
    const char* words[] = {"Hello", "world", "it's", "a", "42", "!", "  ", "\n", "na\xC3\xAFve", "\n\n",
                           "x\nB", "\xE2\x80\x94", "\xF0\x9F\x98\x80", "\xFF", "caf\xC3\xA9\n"};
    std::string text;
    while (text.size() < 20000) text += std::string(rng() % 3 ? " " : "") + words[rng() % 15];
    return text;
}

void check_same_ids(const Tokenizer& tokenizer, const std::string& text) {
    std::int64_t unknown_whole = 0;
    const std::vector<std::int64_t> whole = tokenizer.encode(text, &unknown_whole);
    for (const std::size_t piece : {std::size_t{1}, std::size_t{7}, std::size_t{100}, std::size_t{1} << 20}) {
        CAPTURE(piece);
        std::int64_t unknown = -1;
        const TokenSource ids = encode_corpus(text, tokenizer, "awkward", &unknown, piece);
        CHECK(ids.storage() == TokenSource::Storage::UInt16);
        CHECK(ids.to_vector() == whole);
        CHECK(unknown == unknown_whole);
    }
}

}  // namespace

TEST_CASE("encode_corpus: piece by piece, the ids of encoding the text whole, at 2 bytes a token") {
    const std::string text = awkward_text();
    SUBCASE("byte") { check_same_ids(Tokenizer::byte_level(), text); }
    SUBCASE("char, with unknown characters and invalid bytes") {
        const Tokenizer chars = Tokenizer::character_level(text.substr(0, text.size() / 3));
        check_same_ids(chars, text);
        std::int64_t unknown = 0;
        (void)chars.encode(text, &unknown);
        CHECK(unknown > 0);  // the test does exercise unknowns
    }
    SUBCASE("bpe") { check_same_ids(Tokenizer::bpe(train_bpe(text, {.vocab_size = 400})), text); }
}

TEST_CASE("encode_corpus: the empty text, and ids checked against the vocabulary on read") {
    CHECK(encode_corpus("", Tokenizer::byte_level(), "empty").size() == 0);
    const TokenSource ids = encode_corpus("ab", Tokenizer::byte_level(), "ab");
    CHECK(ids.at(1) == 'b');
    CHECK(ids.slice(1, 2).to_vector() == std::vector<std::int64_t>{'b'});
    const TokenSource narrow(std::vector<std::uint16_t>{1, 300}, 256, "narrow");
    CHECK(narrow.at(0) == 1);
    CHECK_THROWS_WITH_AS(narrow.at(1), doctest::Contains("token id 300 at position 1"), tg::IndexError);
    const TokenSource wide(std::vector<std::uint32_t>{70000}, 70001, "wide");
    CHECK(wide.storage() == TokenSource::Storage::UInt32);
    CHECK(wide.at(0) == 70000);
}
