// Byte-level BPE (nn/data/byte_unicode, pretokenize, bpe, bpe_train, bpe_files, tokenizer): GPT-2's byte table,
// hand-checked pre-tokenization and merges on a small self-made vocabulary, the heap merge loop against GPT-2's
// plain loop, training on a hand-checked corpus and its determinism, the file formats (round trips, malformed
// files), streaming decode across multi-byte characters. GPT-2's own vocabulary is tested in
// test_tokenizer_gpt2.cpp.

#include "nn/data/bpe.h"
#include "nn/data/bpe_files.h"
#include "nn/data/bpe_train.h"
#include "nn/data/byte_unicode.h"
#include "nn/data/pretokenize.h"
#include "nn/data/tokenizer.h"
#include "nn/data/utf8.h"

#include <doctest/doctest.h>

#include "tests/test_util.h"

#include <tbb/global_control.h>

#include <algorithm>
#include <climits>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

using namespace tg;
using namespace tg::data;
using namespace tg::testing;

namespace {

namespace fs = std::filesystem;

struct TempDir {
    fs::path path;
    explicit TempDir(const std::string& name)
        : path(fs::temp_directory_path() / ("tg-bpe-" + name + "-" + std::to_string(::getpid()))) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string write(const std::string& name, const std::string& bytes) const {
        const fs::path p = path / name;
        std::ofstream(p, std::ios::binary) << bytes;
        return p.string();
    }
};

std::vector<std::string> pieces_of(const std::string& text) {
    std::vector<std::string_view> views;
    gpt2_pretokenize(text, views);
    return {views.begin(), views.end()};
}

// A small vocabulary by hand: the 256 bytes in GPT-2's order, then one token per merge (given as byte strings),
// then "<|endoftext|>".
BpeModel small_model(const std::vector<std::pair<std::string, std::string>>& merges) {
    std::vector<std::string> tokens;
    for (unsigned char b : gpt2_byte_order()) tokens.emplace_back(1, static_cast<char>(b));
    auto id = [&](const std::string& bytes) {
        const auto it = std::find(tokens.begin(), tokens.end(), bytes);
        REQUIRE(it != tokens.end());
        return static_cast<std::int32_t>(it - tokens.begin());
    };
    std::vector<std::pair<std::int32_t, std::int32_t>> ids;
    for (const auto& [a, b] : merges) {
        ids.emplace_back(id(a), id(b));
        if (std::find(tokens.begin(), tokens.end(), a + b) == tokens.end()) tokens.push_back(a + b);
    }
    tokens.push_back("<|endoftext|>");
    return BpeModel(tokens, ids, {{static_cast<std::int64_t>(tokens.size()) - 1, "<|endoftext|>"}}, "small model");
}

const std::vector<std::pair<std::string, std::string>> kSmallMerges = {
    {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {" ", "w"}, {"o", "r"}, {" w", "or"}, {"l", "d"}, {" wor", "ld"},
    {"a", "a"}, {"\xC3", "\xA9"},  // "é" as one token
};

std::vector<std::string> token_strings(const BpeModel& m, const std::vector<std::int64_t>& ids) {
    std::vector<std::string> out;
    for (std::int64_t id : ids) out.push_back(m.token(id));
    return out;
}

// GPT-2's own loop (openai/gpt-2 encoder.py, bpe()): find the lowest-rank pair, merge all its occurrences left
// to right, repeat. The reference for the heap version in BpeModel::encode_piece.
std::vector<std::string> gpt2_reference_bpe(const BpeModel& m, const std::string& piece) {
    std::map<std::pair<std::string, std::string>, std::size_t> rank;
    for (std::size_t r = 0; r < m.merges().size(); ++r) rank[{m.token(m.merges()[r].first), m.token(m.merges()[r].second)}] = r;
    std::vector<std::string> word;
    for (char c : piece) word.emplace_back(1, c);
    while (word.size() > 1) {
        std::size_t best = SIZE_MAX;
        std::pair<std::string, std::string> best_pair;
        for (std::size_t i = 0; i + 1 < word.size(); ++i) {
            const auto it = rank.find({word[i], word[i + 1]});
            if (it != rank.end() && it->second < best) {
                best = it->second;
                best_pair = it->first;
            }
        }
        if (best == SIZE_MAX) break;
        std::vector<std::string> next;
        for (std::size_t i = 0; i < word.size(); ++i) {
            if (i + 1 < word.size() && word[i] == best_pair.first && word[i + 1] == best_pair.second) {
                next.push_back(word[i] + word[i + 1]);
                ++i;
            } else {
                next.push_back(word[i]);
            }
        }
        word = next;
    }
    return word;
}

bool valid_utf8(const std::string& s) {
    for (std::size_t i = 0; i < s.size();) {
        const int len = utf8_valid_length(reinterpret_cast<const unsigned char*>(s.data()) + i, s.size() - i);
        if (len == 0) return false;
        i += static_cast<std::size_t>(len);
    }
    return true;
}

}  // namespace

TEST_SUITE("tokenizer_bpe") {

TEST_CASE("GPT-2's byte table: printable bytes stand for themselves, the rest take U+0100..") {
    CHECK(gpt2_byte_to_code_point('A') == 'A');
    CHECK(gpt2_byte_to_code_point(0xE9) == 0xE9);     // é
    CHECK(gpt2_byte_to_code_point(0x00) == 0x100);    // Ā
    CHECK(gpt2_byte_to_code_point(' ') == 0x120);     // Ġ
    CHECK(gpt2_byte_to_code_point('\n') == 0x10A);    // Ċ
    CHECK(gpt2_byte_to_code_point(0xAD) == 0x143);    // the last of the 68 non-printable bytes
    CHECK(gpt2_byte_order()[0] == '!');
    CHECK(gpt2_byte_order()[188] == 0x00);
    CHECK(gpt2_byte_order()[220] == ' ');  // GPT-2's "Ġ" is id 220
    CHECK(bytes_to_gpt2_text(" the\n") == "\xC4\xA0the\xC4\x8A");
    std::string all;
    for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
    CHECK(gpt2_text_to_bytes(bytes_to_gpt2_text(all), "test") == all);
    check_throws<ValueError>([] { gpt2_text_to_bytes("\xE2\x82\xAC", "vocab.json"); }, {"vocab.json", "not one of GPT-2's 256"});
}

TEST_CASE("pre-tokenization: GPT-2's pattern, hand-checked") {
    using V = std::vector<std::string>;
    CHECK(pieces_of("Hello  world!\n") == V{"Hello", " ", " world", "!", "\n"});
    CHECK(pieces_of("I'm don't they'll") == V{"I", "'m", " don", "'t", " they", "'ll"});
    CHECK(pieces_of("x   ") == V{"x", "   "});                // trailing spaces: one whitespace piece
    CHECK(pieces_of("a\n\nb") == V{"a", "\n", "\n", "b"});   // the last newline before a word is its own piece
    CHECK(pieces_of("  a") == V{" ", " a"});
    CHECK(pieces_of("year 2024: 3.14") == V{"year", " 2024", ":", " 3", ".", "14"});
    CHECK(pieces_of("caf\xC3\xA9 na\xC3\xAFve") == V{"caf\xC3\xA9", " na\xC3\xAFve"});  // accents are letters (\p{L})
    CHECK(pieces_of("\xE4\xBD\xA0\xE5\xA5\xBD!") == V{"\xE4\xBD\xA0\xE5\xA5\xBD", "!"});  // CJK letters
    CHECK(pieces_of(" \xF0\x9F\x98\x80\xF0\x9F\x98\x80") == V{" \xF0\x9F\x98\x80\xF0\x9F\x98\x80"});  // emoji: symbols
    CHECK(pieces_of("a\xC2\xA0" "b") == V{"a", "\xC2\xA0", "b"});  // NO-BREAK SPACE is Unicode white space
    CHECK(pieces_of("--> ...") == V{"-->", " ..."});
    // Invalid UTF-8: each run of invalid bytes is a piece; everything concatenates back.
    CHECK(pieces_of("ab\xFF\xFE" "cd") == V{"ab", "\xFF\xFE", "cd"});
    CHECK(pieces_of("\xC3") == V{"\xC3"});
    CHECK(pieces_of("").empty());
    std::mt19937 rng(7);
    for (int trial = 0; trial < 200; ++trial) {
        std::string s;
        const int n = static_cast<int>(rng() % 40);
        for (int i = 0; i < n; ++i) s += "a Z9 \n\t'.\xC3\xA9\xFF\x80"[rng() % 14];
        std::string joined;
        for (const std::string& p : pieces_of(s)) {
            CHECK(!p.empty());
            joined += p;
        }
        CHECK(joined == s);
    }
}

TEST_CASE("small self-made vocabulary: merges by rank, special tokens, round trips") {
    const BpeModel m = small_model(kSmallMerges);
    CHECK(m.vocab_size() == 256 + 11 + 1);  // 11 merges, each a new token
    CHECK(token_strings(m, m.encode("hello world")) == std::vector<std::string>{"hello", " world"});
    CHECK(token_strings(m, m.encode("hellllo")) == std::vector<std::string>{"hell", "ll", "o"});
    // GPT-2's rule on overlaps: merge left to right, without overlap.
    CHECK(token_strings(m, m.encode("aaa")) == std::vector<std::string>{"aa", "a"});
    CHECK(token_strings(m, m.encode("aaaa")) == std::vector<std::string>{"aa", "aa"});
    CHECK(token_strings(m, m.encode("caf\xC3\xA9")) == std::vector<std::string>{"c", "a", "f", "\xC3\xA9"});
    // Special tokens: ordinary text unless asked for.
    const std::int64_t eot = m.special_id("<|endoftext|>");
    CHECK(eot == 267);
    CHECK(m.encode("<|endoftext|>").size() > 1);
    CHECK(m.encode_with_special_tokens("hello<|endoftext|> world") ==
          std::vector<std::int64_t>{m.token_id("hello"), eot, m.token_id(" world")});
    CHECK(m.encode_with_special_tokens("<|endoftext|><|endoftext|>") == std::vector<std::int64_t>{eot, eot});
    // Lossless for any bytes, through the Tokenizer.
    const Tokenizer tok = Tokenizer::bpe(m);
    CHECK(tok.kind() == Tokenizer::Kind::Bpe);
    CHECK(tok.kind_name() == "bpe");
    CHECK(tok.vocab_size() == 268);
    for (const std::string s : {"hello world", "", "x\xFF\xC3y\n\n  ", "\xE2\x82", "<|endoftext|> h\xC3\xA9llo"}) {
        CHECK(tok.decode(tok.encode(s)) == s);
    }
    CHECK(tok.special_token_id("<|endoftext|>") == 267);
    CHECK(tok.special_token_id("<|pad|>") == -1);
    CHECK(tok.token_bytes(m.token_id(" world")) == " world");
    check_throws<IndexError>([&] { tok.decode({268}); }, {"268", "outside [0, 268)"});
}

TEST_CASE("the heap merge loop gives GPT-2's plain loop on random words") {
    // A vocabulary trained on a repetitive corpus has many overlapping merges ("aa", "aaa", "ab", "aab", ...).
    std::mt19937 rng(11);
    std::string corpus;
    for (int i = 0; i < 4000; ++i) corpus += "ab c"[rng() % 4];
    const BpeModel m = train_bpe(corpus, {.vocab_size = 256 + 60, .special_tokens = {}, .min_pair_count = 2});
    REQUIRE(m.merges().size() >= 40);
    for (int trial = 0; trial < 300; ++trial) {
        std::string piece;
        const int n = 1 + static_cast<int>(rng() % 60);
        for (int i = 0; i < n; ++i) piece += "abbc"[rng() % 4];
        std::vector<std::int32_t> ids;
        m.encode_piece(piece, ids);
        std::vector<std::string> ours;
        for (std::int32_t id : ids) ours.push_back(m.token(id));
        CHECK_MESSAGE(ours == gpt2_reference_bpe(m, piece), "piece \"" << piece << "\"");
    }
}

TEST_CASE("training: hand-checked merges on Sennrich's example corpus") {
    // Pieces: "low" x1, " low" x4, " lower" x2, " newest" x6, " widest" x3. Pair counts: (e,s) = (s,t) = 9 are
    // the largest, tie broken by the smaller ids (e=68, s=82, t=83 in GPT-2's byte order): "es", then "est" (9).
    // Then (l,o) = (o,w) = 7 (w,e now 2): "lo" (l=75 < o=78), "low". Then at 6: (Ġ,low), (Ġ,n), (n,e), (e,w),
    // (w,est); the smallest ids are (e=68, w=86): "ew"; then (n, ew) = (77, 260) before (Ġ=220, ...): "new";
    // then (Ġ=220, low=259) before (Ġ, new=261): " low".
    const std::string corpus = "low low low low low lower lower newest newest newest newest newest newest widest "
                               "widest widest";
    const BpeModel m = train_bpe(corpus, {.vocab_size = 256 + 7 + 1});
    std::vector<std::string> merged;
    for (const auto& [a, b] : m.merges()) merged.push_back(m.token(a) + m.token(b));
    CHECK(merged == std::vector<std::string>{"es", "est", "lo", "low", "ew", "new", " low"});
    CHECK(m.vocab_size() == 264);
    CHECK(m.token(263) == "<|endoftext|>");
    CHECK(m.special_id("<|endoftext|>") == 263);
    // The trained vocabulary segments its corpus as training did.
    CHECK(token_strings(m, m.encode(" newest")) == std::vector<std::string>{" ", "new", "est"});
    // Training stops when no pair occurs twice: a corpus without repeats gives no merges.
    CHECK(train_bpe("abc", {.vocab_size = 1000}).vocab_size() == 257);
    check_throws<ValueError>([] { train_bpe("abc", {.vocab_size = 256}); }, {"vocab_size 256", "256 byte tokens + 1"});
}

TEST_CASE("training: special tokens separate documents, and the result is deterministic") {
    // "xy" occurs only across the separator: it must not be learned.
    std::string corpus;
    for (int i = 0; i < 50; ++i) corpus += "ax<|endoftext|>ya ";
    const BpeModel m = train_bpe(corpus, {.vocab_size = 300});
    for (const auto& [a, b] : m.merges()) CHECK(m.token(a) + m.token(b) != "xy");
    CHECK(m.token_id("<|") == -1);  // the separator itself is not trained on

    std::string text;
    std::mt19937 rng(3);
    const char* words[] = {"the", "cat", "sat", "on", "a", "mat", "and", "then", "it", "slept", "caf\xC3\xA9", "\n"};
    for (int i = 0; i < 20000; ++i) text += std::string(i ? " " : "") + words[rng() % 12];
    const std::string first = to_hf_tokenizer_json(train_bpe(text, {.vocab_size = 400}));
    std::string second;
    {
        tbb::global_control one_thread(tbb::global_control::max_allowed_parallelism, 1);
        second = to_hf_tokenizer_json(train_bpe(text, {.vocab_size = 400}));
    }
    CHECK(first == second);
}

TEST_CASE("long texts are encoded in parallel chunks with the same ids as piece by piece") {
    std::mt19937 rng(5);
    std::string corpus;
    const char* words[] = {"Hello", "world", "it's", "a", "test", "42", "!", "  ", "\n", "na\xC3\xAFve", "\n\n", "x\n"};
    while (corpus.size() < 1500 * 1024) corpus += std::string(" ") + words[rng() % 12];
    const BpeModel m = train_bpe(corpus.substr(0, 100000), {.vocab_size = 512});
    const std::vector<std::int64_t> fast = m.encode(corpus);  // > 512 KiB: parallel chunks
    std::vector<std::string_view> pieces;
    gpt2_pretokenize(corpus, pieces);
    std::vector<std::int64_t> reference;
    for (std::string_view p : pieces) {
        std::vector<std::int32_t> ids;
        m.encode_piece(p, ids);
        reference.insert(reference.end(), ids.begin(), ids.end());
    }
    CHECK(fast == reference);
    tbb::global_control one_thread(tbb::global_control::max_allowed_parallelism, 1);
    CHECK(m.encode(corpus) == fast);
}

TEST_CASE("pathological texts: long runs are one piece, encoded in O(n log n), losslessly") {
    const BpeModel m = small_model(kSmallMerges);
    for (const std::string& s : {std::string(300000, '='), std::string(300000, ' '), std::string(300000, 'a'),
                                 std::string(300000, '\n') + "x", std::string(200000, 'a') + std::string(200000, ' ')}) {
        const std::vector<std::int64_t> ids = m.encode(s);
        std::string back;
        for (std::int64_t id : ids) back += m.token(id);
        CHECK(back == s);
    }
    CHECK(m.encode(std::string(300001, 'a')).size() == 150001);  // "aa" × 150000, then "a"
}

TEST_CASE("streaming decode never cuts a character, with tokens that end inside one") {
    // Tokens "\xC3" + "\xA9x": a merge that starts inside "é"; and the 4-byte emoji from single bytes.
    const Tokenizer tok = Tokenizer::bpe(small_model({{"\xA9", "x"}, {"a", "\xC3"}}));
    const std::string text = "a\xC3\xA9x \xF0\x9F\x98\x80 \xC3\xA9\xFF!";
    const std::vector<std::int64_t> ids = tok.encode(text);
    CHECK(ids.size() < text.size());
    TokenStreamDecoder stream(tok);
    std::string joined;
    for (std::int64_t id : ids) {
        const std::string part = stream.push(id);
        if (part.find('\xFF') == std::string::npos) CHECK(valid_utf8(part));
        joined += part;
    }
    joined += stream.finish();
    CHECK(joined == text);
}

TEST_CASE("tokenizer.json: written in Hugging Face's layout, read back identical") {
    const Tokenizer tok = Tokenizer::bpe(small_model(kSmallMerges));
    TempDir dir("json");
    const std::string path = (dir.path / "tokenizer.json").string();
    tok.save(path);
    const nlohmann::json j = nlohmann::json::parse(std::ifstream(path));
    CHECK(j["model"]["type"] == "BPE");
    CHECK(j["pre_tokenizer"]["type"] == "ByteLevel");
    CHECK(j["decoder"]["type"] == "ByteLevel");
    CHECK(j["added_tokens"][0]["content"] == "<|endoftext|>");
    CHECK(j["added_tokens"][0]["special"] == true);
    CHECK(j["model"]["vocab"]["\xC4\xA0world"] == tok.bpe_model()->token_id(" world"));
    CHECK(j["model"]["merges"][4] == "\xC4\xA0 w");
    const Tokenizer back = Tokenizer::load(path);
    CHECK(back == tok);
    CHECK(Tokenizer::load(dir.path.string()) == tok);  // a folder holding tokenizer.json
    for (const std::string s : {"hello world", "aaa\n", "caf\xC3\xA9 \xF0\x9F\x98\x80"}) CHECK(back.encode(s) == tok.encode(s));
    // Saving twice gives the same bytes; config.json's form round-trips too.
    tok.save(path + "2");
    CHECK(read_text_file(path, "t") == read_text_file(path + "2", "t"));
    CHECK(Tokenizer::from_json(tok.to_json()) == tok);
    // The byte tokenizer saves as the equivalent BPE.
    Tokenizer::byte_level().save(path);
    const Tokenizer bytes = Tokenizer::load(path);
    CHECK(bytes.kind() == Tokenizer::Kind::Bpe);
    CHECK(bytes.encode("h\xC3\xA9\xFF") == std::vector<std::int64_t>{'h', 0xC3, 0xA9, 0xFF});
    check_throws<ValueError>([&] { Tokenizer::character_level("ab").save(path); }, {"character tokenizer"});
}

TEST_CASE("a tokenizer.json in the exact layout Hugging Face publishes for GPT-2 (GPT-2's first 1,000 merges)") {
    // Made by tests/fixtures/gpt2/make_hf_fixture.py, with ids from OpenAI's encoder.py algorithm.
    const std::string dir = std::string(TG_TEST_DATA_DIR) + "/gpt2/";
    const Tokenizer hf = Tokenizer::load(dir + "hf_gpt2_first1000.json");
    CHECK(hf.vocab_size() == 1257);
    CHECK(hf.special_token_id("<|endoftext|>") == 1256);
    CHECK(hf.bpe_model()->merges().size() == 1000);
    std::ifstream in(dir + "hf_gpt2_first1000_ids.jsonl");
    REQUIRE(in);
    int cases = 0;
    TempDir tmp("hf-layout");
    const std::string ours_path = (tmp.path / "tokenizer.json").string();
    hf.save(ours_path);
    const Tokenizer back = Tokenizer::load(ours_path);
    CHECK(back == hf);
    for (std::string line; std::getline(in, line); ++cases) {
        const nlohmann::json j = nlohmann::json::parse(line);
        std::string text;
        const std::string hex = j["hex"].get<std::string>();
        for (std::size_t i = 0; i + 1 < hex.size(); i += 2) text += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
        const auto expected = j["ids"].get<std::vector<std::int64_t>>();
        CHECK_MESSAGE(hf.encode(text) == expected, "text \"" << text << "\"");
        CHECK(back.encode(text) == expected);
        CHECK(hf.decode(expected) == text);
    }
    CHECK(cases == 10);
    // What we write keeps Hugging Face's top-level key order and the fields each part needs.
    const nlohmann::ordered_json ours = nlohmann::ordered_json::parse(std::ifstream(ours_path));
    std::vector<std::string> keys;
    for (const auto& [k, v] : ours.items()) keys.push_back(k);
    CHECK(keys == std::vector<std::string>{"version", "truncation", "padding", "added_tokens", "normalizer",
                                           "pre_tokenizer", "post_processor", "decoder", "model"});
    for (const char* field : {"id", "content", "single_word", "lstrip", "rstrip", "normalized", "special"}) {
        CHECK(ours["added_tokens"][0].contains(field));
    }
    CHECK(ours["model"]["continuing_subword_prefix"] == "");
    CHECK(ours["model"]["merges"][0] == "\xC4\xA0 t");  // GPT-2's first merge: "Ġ t"
}

TEST_CASE("GPT-2's two-file form: encoder.json + vocab.bpe, vocab.json + merges.txt") {
    const BpeModel m = small_model(kSmallMerges);
    nlohmann::ordered_json vocab;
    for (std::int64_t id = 0; id < m.vocab_size(); ++id) vocab[bytes_to_gpt2_text(m.token(id))] = id;
    std::string merges = "#version: 0.2\n";
    for (const auto& [a, b] : m.merges()) merges += bytes_to_gpt2_text(m.token(a)) + " " + bytes_to_gpt2_text(m.token(b)) + "\n";
    TempDir dir("gpt2");
    dir.write("encoder.json", vocab.dump());
    dir.write("vocab.bpe", merges);
    const Tokenizer a = Tokenizer::load(dir.path.string());
    CHECK(*a.bpe_model() == m);
    TempDir hf("hf");
    hf.write("vocab.json", vocab.dump());
    hf.write("merges.txt", merges);
    CHECK(*Tokenizer::load(hf.path.string()).bpe_model() == m);
    check_throws<IOError>([] { Tokenizer::load("/nonexistent/tokenizer.json"); }, {"/nonexistent/tokenizer.json", "no such"});
    TempDir empty("empty");
    check_throws<IOError>([&] { Tokenizer::load(empty.path.string()); }, {"neither tokenizer.json"});
}

TEST_CASE("malformed vocabularies are refused with a reason") {
    const std::string good = to_hf_tokenizer_json(small_model(kSmallMerges));
    auto parse = [](const std::string& text) { return parse_hf_tokenizer_json(text, "t.json"); };
    auto edited = [&](auto&& edit) {
        nlohmann::ordered_json j = nlohmann::ordered_json::parse(good);
        edit(j);
        return j.dump();
    };
    CHECK(parse(good) == small_model(kSmallMerges));
    check_throws<ValueError>([&] { parse("{\"model\": "); }, {"t.json", "not JSON"});
    check_throws<ValueError>([&] { parse(good.substr(0, good.size() / 2)); }, {"t.json", "not JSON"});  // truncated
    check_throws<ValueError>([&] { parse(edited([](auto& j) { j["model"].erase("merges"); })); }, {"t.json", "missing \"merges\""});
    check_throws<ValueError>([&] { parse(edited([](auto& j) { j.erase("model"); })); }, {"missing \"model\""});
    check_throws<ValueError>([&] { parse(edited([](auto& j) { j["model"]["merges"].push_back("zz q"); })); },
                             {"merge 11", "\"zz\"", "not in the vocabulary"});
    check_throws<ValueError>([&] { parse(edited([](auto& j) { j["model"]["merges"].push_back("h"); })); }, {"expected \"a b\""});
    check_throws<ValueError>([&] { parse(edited([](auto& j) { j["model"]["merges"].push_back("h e"); })); }, {"repeats merge 0"});
    check_throws<ValueError>([&] { parse(edited([](auto& j) { j["model"]["vocab"].erase("he"); })); }, {"no token has id"});
    check_throws<ValueError>([&] { parse(edited([](auto& j) { j["model"]["vocab"]["A"] = 100000; })); }, {"token \"A\" has id 100000", "without gaps"});
    check_throws<ValueError>([&] { parse(edited([](auto& j) { j["model"]["vocab"]["zz"] = 3; })); }, {"id 3 is given to two tokens"});
    check_throws<ValueError>([&] { parse(edited([](auto& j) { j["model"]["type"] = "WordPiece"; })); }, {"WordPiece", "BPE only"});
    check_throws<ValueError>([&] { parse(edited([](auto& j) { j["pre_tokenizer"]["add_prefix_space"] = true; })); },
                             {"add_prefix_space"});
    check_throws<ValueError>([&] { parse(edited([](auto& j) { j["normalizer"] = {{"type", "NFC"}}; })); }, {"normalizer"});
    check_throws<ValueError>([&] { parse(edited([](auto& j) { j["added_tokens"][0]["id"] = 5; })); },
                             {"added token \"<|endoftext|>\" has id 5"});
    // A vocabulary lacking a byte token cannot encode every text.
    check_throws<ValueError>([&] {
        parse(edited([](auto& j) {
            j["model"]["vocab"].erase("!");
            j["model"]["vocab"]["!!"] = 0;
        }));
    }, {"byte 33 has no single-byte token"});
    // GPT-2's form.
    check_throws<ValueError>([] { parse_gpt2_bpe("[1, 2]", "", "enc"); }, {"enc", "non-empty JSON object"});
    check_throws<ValueError>([] { parse_gpt2_bpe("{\"a\": 0}", "", "enc"); }, {"byte", "no single-byte token"});
}

}  // TEST_SUITE
