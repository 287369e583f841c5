// A corpus encoded piece by piece into narrow ids (nn/data/corpus_tokens.h): the same ids as encoding it whole,
// for the byte, character and BPE tokenizers, on texts whose pieces are cut in awkward places (multi-byte
// characters, invalid bytes, whitespace runs), stored as uint16 (2 bytes a token) and checked on read. And the
// streaming path of `tg-gpt prepare`: text_corpus.h's stream_text_corpus, encode_text_corpus's sink, token_shard.h's
// TokenShardWriter, on corpus files made to trip the cut rule (runs of newlines and spaces, non-ASCII letters, "%"
// separator lines, files without a final newline).

#include "core/error.h"
#include "nn/data/bpe.h"
#include "nn/data/bpe_train.h"
#include "nn/data/corpus_tokens.h"
#include "nn/data/text_corpus.h"
#include "nn/data/token_shard.h"
#include "nn/data/tokenizer.h"

#include <doctest/doctest.h>

#include "tests/test_util.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <span>
#include <string>
#include <vector>

using namespace tg;
using namespace tg::data;
using namespace tg::testing;

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

namespace {

// Three files of awkward text: cut candidates everywhere, and places that look like cuts but are not.
void write_awkward_corpus(const ScratchDir& dir) {
    std::string a, b;
    for (int i = 0; i < 60; ++i) {
        a += "Line " + std::to_string(i) + ": don't stop.\nNext\n\n\nword  \n  indented\n%\n\xC3\xBC" "ber caf\xC3\xA9\n";
        b += "x\ny\n\t\nz 12345\n\n" + std::string(static_cast<std::size_t>(i % 7), ' ') + "\nend";
    }
    dir.write("corpus/a.txt", a);
    dir.write("corpus/b.txt", b);  // no final newline
    dir.write("corpus/c.txt", "%\nlast one\n");
}

std::string bytes_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::int64_t> streamed(const std::string& path, const Tokenizer& tok, std::size_t piece_bytes,
                                   CorpusTokens* counts = nullptr) {
    std::vector<std::int64_t> ids;
    const CorpusTokens c = encode_text_corpus(path, tok, [&](std::span<const std::int64_t> piece) {
        CHECK(!piece.empty());
        ids.insert(ids.end(), piece.begin(), piece.end());
    }, piece_bytes);
    CHECK(c.tokens == static_cast<std::int64_t>(ids.size()));
    if (counts) *counts = c;
    return ids;
}

}  // namespace

TEST_CASE("stream_text_corpus hands on exactly load_text_corpus's text, separators between files included") {
    ScratchDir dir("corpus-stream");
    write_awkward_corpus(dir);
    const std::string path = dir.file("corpus");
    for (const std::string separator : {"", "<|endoftext|>"}) {
        const TextCorpus whole = load_text_corpus(path, separator);
        std::string text;
        const std::vector<std::string> files = stream_text_corpus(path, [&](std::string_view p) { text += p; }, separator);
        CHECK(text == whole.text);
        CHECK(files == whole.files);
        CHECK(files.size() == 3);
    }
}

TEST_CASE("next_safe_cut: only after a lone newline between visible characters") {
    CHECK(next_safe_cut("x\nB", 0) == 2);
    CHECK(next_safe_cut("x\n\nB", 0) == 4);  // none: "\n\n" would become one piece in the first part
    CHECK(next_safe_cut("x \nB", 0) == 4);
    CHECK(next_safe_cut("x\n B", 0) == 4);
    CHECK(next_safe_cut("x\nB", 3) == 3);     // the end is no cut (nothing after it)
    CHECK(next_safe_cut("\nB", 0) == 2);
}

TEST_CASE("encode_text_corpus: the ids of encoding the whole corpus at once, at every piece size") {
    ScratchDir dir("corpus-tokens");
    write_awkward_corpus(dir);
    const std::string path = dir.file("corpus");
    const std::string text = load_text_corpus(path).text;
    const Tokenizer bpe = Tokenizer::bpe(train_bpe(text, {.vocab_size = 320}));
    const Tokenizer chars = Tokenizer::character_level("abc\n ");  // most characters unknown
    const Tokenizer bytes = Tokenizer::byte_level();
    for (const Tokenizer* tok : {&bpe, &chars, &bytes}) {
        CAPTURE(tok->kind_name());
        std::int64_t unknown = 0;
        const std::vector<std::int64_t> expected = tok->encode(text, &unknown);
        for (const std::size_t piece : {std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{100},
                                        std::size_t{4096}, kCorpusPieceBytes}) {
            CAPTURE(piece);
            CorpusTokens counts;
            CHECK(streamed(path, *tok, piece, &counts) == expected);
            CHECK(counts.bytes == static_cast<std::int64_t>(text.size()));
            CHECK(counts.unknown == unknown);
            CHECK(counts.files.size() == 3);
            // The in-memory form, as `tg-gpt train` on a text corpus holds it.
            CorpusTokens kept;
            const TokenSource ids = encode_text_corpus(path, *tok, &kept, piece);
            CHECK(ids.storage() == TokenSource::Storage::UInt16);
            CHECK(ids.origin() == path);
            CHECK(ids.to_vector() == expected);
            CHECK(kept.tokens == static_cast<std::int64_t>(expected.size()));
        }
    }
}

TEST_CASE("encode_text_corpus: errors of the corpus and of the sink reach the caller") {
    ScratchDir dir("corpus-tokens-errors");
    const auto ignore = [](std::span<const std::int64_t>) {};
    check_throws<IOError>([&] { encode_text_corpus(dir.file("missing"), Tokenizer::byte_level(), ignore); },
                          {"missing", "no such file"});
    dir.write("bin.txt", std::string("text\0more", 9));
    check_throws<ValueError>([&] { encode_text_corpus(dir.file("bin.txt"), Tokenizer::byte_level(), ignore); },
                             {"bin.txt", "NUL byte at offset 4"});
    dir.write("ok.txt", "hello\nworld\n");
    check_throws<ValueError>([&] {
        encode_text_corpus(dir.file("ok.txt"), Tokenizer::byte_level(),
                           [](std::span<const std::int64_t>) { throw ValueError("sink full"); });
    }, {"sink full"});
}

TEST_CASE("TokenShardWriter: pieces appended make the shard write_token_shard writes; no file without commit") {
    ScratchDir dir("shard-writer");
    std::vector<std::int64_t> ids;
    for (int i = 0; i < 1000; ++i) ids.push_back((i * 37) % 70000);
    write_token_shard(dir.file("whole.bin"), TokenSource(ids), 70000, 9);
    {
        TokenShardWriter w(dir.file("pieces.bin"), 70000, 9);
        w.append(std::span<const std::int64_t>(ids.data(), 3));
        w.append(std::span<const std::int64_t>(ids.data() + 3, 0));
        w.append(std::span<const std::int64_t>(ids.data() + 3, ids.size() - 3));
        CHECK(w.count() == 1000);
        w.commit();
    }
    CHECK(bytes_of(dir.file("pieces.bin")) == bytes_of(dir.file("whole.bin")));
    const TokenShard shard = open_token_shard(dir.file("pieces.bin"));
    CHECK(shard.info.bytes_per_token == 4);
    CHECK(shard.tokens.to_vector() == ids);
    {
        TokenShardWriter w(dir.file("abandoned.bin"), 300, 0);
        w.append(std::vector<std::int64_t>{1, 2});
        const std::vector<std::int64_t> bad = {5, 300};
        check_throws<ValueError>([&] { w.append(bad); }, {"token id 300 at position 3", "[0, 300)"});
    }
    CHECK(!std::filesystem::exists(dir.file("abandoned.bin")));
}
