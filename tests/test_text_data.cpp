// Text data for the GPT (nn/data/text_corpus, tokenizer, text_batches): corpus loading (fortune format,
// folders, errors), tokenizer round trips (multi-byte UTF-8, unknown characters, JSON, streaming), the
// train/validation split, window determinism, and the background loader against the synchronous sampler,
// including saving and restoring its state.

#include "nn/data/text_batches.h"
#include "nn/data/text_corpus.h"
#include "nn/data/tokenizer.h"

#include <doctest/doctest.h>

#include "tests/test_util.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace tg;
using namespace tg::data;
using namespace tg::testing;

namespace {

namespace fs = std::filesystem;

std::vector<std::int64_t> to_ids(const Tensor& t) { return t.to_vector<std::int64_t>(); }

bool same_batch(const TextBatch& a, const TextBatch& b) {
    return a.x.shape() == b.x.shape() && to_ids(a.x) == to_ids(b.x) && to_ids(a.y) == to_ids(b.y);
}

std::shared_ptr<const std::vector<std::int64_t>> counting_tokens(std::int64_t n) {
    auto v = std::make_shared<std::vector<std::int64_t>>();
    for (std::int64_t i = 0; i < n; ++i) v->push_back(i);
    return v;
}

}  // namespace

TEST_SUITE("text_data") {

TEST_CASE("fortune separators become empty lines") {
    CHECK(strip_fortune_separators("one\n%\ntwo\nlines\n%\nthree\n") == "one\n\ntwo\nlines\n\nthree\n");
    CHECK(strip_fortune_separators("a\r\n%\r\nb") == "a\r\n\nb");
    CHECK(strip_fortune_separators("50% off\n%%\n") == "50% off\n%%\n");  // only a lone % is a separator
    CHECK(strip_fortune_separators("") == "");
}

TEST_CASE("a folder is read recursively in sorted order, skipping .dat, .u8 and hidden files") {
    ScratchDir dir("text-data-folder");
    dir.write("b", "second\n%\nthird\n");
    dir.write("b.dat", std::string("\0\0\0\2binary index", 16));
    dir.write("b.u8", "duplicate\n");
    dir.write("a", "first");  // no final newline
    dir.write("sub/c", "fourth\n");
    dir.write(".hidden", "never\n");
    const TextCorpus corpus = load_text_corpus(dir.path.string());
    REQUIRE(corpus.files.size() == 3);
    CHECK(fs::path(corpus.files[0]).filename() == "a");
    CHECK(fs::path(corpus.files[1]).filename() == "b");
    CHECK(fs::path(corpus.files[2]).filename() == "c");
    CHECK(corpus.text == "first\n\nsecond\n\nthird\n\nfourth\n");
}

TEST_CASE("a single file is read as it is, with separators stripped") {
    ScratchDir dir("text-data-file");
    const std::string path = dir.write("quotes.txt", "héllo wörld\n%\n日本語\n");
    const TextCorpus corpus = load_text_corpus(path);
    CHECK(corpus.text == "héllo wörld\n\n日本語\n");
    CHECK(corpus.files == std::vector<std::string>{path});
}

TEST_CASE("with a document separator, fortunes and files are separated by it, once") {
    ScratchDir dir("text-data-documents");
    dir.write("a", "one\n%\ntwo\n%\n");  // a trailing separator line, as fortune files have
    dir.write("b", "three");                // no final newline
    dir.write("c", "four\n");
    const TextCorpus corpus = load_text_corpus(dir.path.string(), "<|endoftext|>");
    CHECK(corpus.text == "one\n<|endoftext|>two\n<|endoftext|>three\n<|endoftext|>four\n");
}

TEST_CASE("missing, empty and binary inputs give errors naming the path") {
    ScratchDir dir("text-data-errors");
    const std::string missing = (dir.path / "nope").string();
    check_throws<IOError>([&] { load_text_corpus(missing); }, {"text corpus", missing, "no such file or folder"});

    const std::string empty = dir.write("empty.txt", "");
    check_throws<ValueError>([&] { load_text_corpus(empty); }, {empty, "empty"});

    const std::string nul = dir.write("nul.bin", std::string("text\0more", 9));
    check_throws<ValueError>([&] { load_text_corpus(nul); }, {nul, "binary", "NUL byte at offset 4"});

    std::string latin;  // mostly bytes >= 0x80 that are not UTF-8
    for (int i = 0; i < 100; ++i) latin += (i % 2) ? 'a' : static_cast<char>(0xE9);
    const std::string bad = dir.write("latin1.txt", latin);
    check_throws<ValueError>([&] { load_text_corpus(bad); }, {bad, "not valid UTF-8"});

    ScratchDir only_index("only-index");
    only_index.write("x.dat", "index");
    check_throws<ValueError>([&] { load_text_corpus(only_index.path.string()); }, {"no text files"});

    // One binary file in a folder fails the whole load, naming that file.
    ScratchDir mixed("mixed");
    mixed.write("good", "fine text\n");
    const std::string bin = mixed.write("picture.png", std::string("\x89PNG\0\0", 6));
    check_throws<ValueError>([&] { load_text_corpus(mixed.path.string()); }, {bin, "binary"});
}

TEST_CASE("invalid UTF-8 bytes are counted, a few are tolerated") {
    CHECK(count_invalid_utf8_bytes("plain ascii") == 0);
    CHECK(count_invalid_utf8_bytes("h\xC3\xA9llo \xE6\x97\xA5 \xF0\x9F\x98\x80") == 0);
    CHECK(count_invalid_utf8_bytes("\xC0\x80") == 2);      // overlong NUL
    CHECK(count_invalid_utf8_bytes("\xED\xA0\x80") == 3);  // a surrogate
    CHECK(count_invalid_utf8_bytes("abc\xE6\x97") == 2);   // cut short at the end
    CHECK(count_invalid_utf8_bytes("\x80\xBF") == 2);      // stray continuation bytes
    ScratchDir dir("text-data-tolerated");
    const std::string path = dir.write("mostly.txt", std::string(200, 'a') + "\xE9");  // 1 of 201 bytes
    CHECK(load_text_corpus(path).text.size() == 201);
}

TEST_CASE("the default fortunes corpus loads (when installed)") {
    if (!fs::exists(kDefaultCorpusPath)) {
        MESSAGE("skipped: " << kDefaultCorpusPath << " is not installed (scripts/setup.sh installs it)");
        return;
    }
    const TextCorpus corpus = load_text_corpus(kDefaultCorpusPath);
    CHECK(corpus.files.size() > 10);
    CHECK(corpus.text.size() > 1'000'000);
    CHECK(corpus.text.find("\n%\n") == std::string::npos);
    for (const auto& f : corpus.files) CHECK(fs::path(f).extension() != ".dat");
}

TEST_CASE("byte tokenizer: lossless for any bytes, vocab 256") {
    const Tokenizer tok = Tokenizer::byte_level();
    CHECK(tok.vocab_size() == 256);
    CHECK(tok.encode("h\xC3\xA9") == std::vector<std::int64_t>{104, 195, 169});
    const std::string texts[] = {"", "hello", "h\xC3\xA9llo w\xC3\xB6rld", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
                                 "emoji \xF0\x9F\x98\x80", std::string("\0\xFF\x80 raw", 6)};
    for (const std::string& text : texts) CHECK(tok.decode(tok.encode(text)) == text);
    check_throws<IndexError>([&] { tok.decode({65, 256}); }, {"token id 256", "[0, 256)"});
    CHECK(Tokenizer::from_json(tok.to_json()) == tok);
}

TEST_CASE("character tokenizer: vocabulary from the corpus, unknown characters explicit") {
    const std::string corpus = "b\xC3\xA9" "a\n\xE6\x97\xA5" "ab";  // "béa\n日ab"
    const Tokenizer tok = Tokenizer::character_level(corpus);
    // id 0 = unknown, then code points in increasing order: \n a b é 日
    CHECK(tok.vocab_size() == 6);
    CHECK(tok.encode("\na") == std::vector<std::int64_t>{1, 2});
    CHECK(tok.encode("\xC3\xA9\xE6\x97\xA5") == std::vector<std::int64_t>{4, 5});
    CHECK(tok.decode(tok.encode(corpus)) == corpus);

    std::int64_t unknown = -1;
    CHECK(tok.encode("az\xC3\xA9", &unknown) == std::vector<std::int64_t>{2, Tokenizer::kUnknownId, 4});
    CHECK(unknown == 1);
    CHECK(tok.decode({2, 0, 3}) == "a\xEF\xBF\xBD" "b");  // the unknown id decodes to U+FFFD
    check_throws<ValueError>([&] { tok.encode_strict("abz"); }, {"'z'", "U+007A", "offset 2", "not in the vocabulary"});
    check_throws<ValueError>([&] { tok.encode_strict("a\xFF"); }, {"0xFF", "offset 1", "not valid UTF-8"});
    check_throws<ValueError>([] { Tokenizer::character_level("\xFF\xFE"); }, {"no valid UTF-8 character"});

    const Tokenizer back = Tokenizer::from_json(tok.to_json());
    CHECK(back == tok);
    CHECK(back.encode(corpus) == tok.encode(corpus));
}

TEST_CASE("tokenizer JSON: malformed texts are refused with a reason") {
    check_throws<ValueError>([] { Tokenizer::from_json("{"); }, {"not JSON"});
    check_throws<ValueError>([] { Tokenizer::from_json(R"({"kind":"wordpiece","vocab_size":3})"); },
                             {"unknown kind", "wordpiece"});
    check_throws<ValueError>([] { Tokenizer::from_json(R"({"kind":"bpe","vocab_size":3})"); }, {"needs a \"tokenizer\""});
    check_throws<ValueError>([] { Tokenizer::from_json(R"({"kind":"byte","vocab_size":300})"); }, {"256", "300"});
    check_throws<ValueError>([] { Tokenizer::from_json(R"({"kind":"char","vocab_size":3,"chars":["a","b","c"]})"); },
                             {"vocab_size 3", "make 4"});
    check_throws<ValueError>([] { Tokenizer::from_json(R"({"kind":"char","vocab_size":3,"chars":["a","a"]})"); },
                             {"repeats"});
    check_throws<ValueError>([] { Tokenizer::from_json(R"({"kind":"char","vocab_size":2,"chars":["ab"]})"); },
                             {"not exactly one character"});
}

TEST_CASE("stream decoder holds back partial UTF-8 characters and loses nothing") {
    const Tokenizer tok = Tokenizer::byte_level();
    const std::string text = "a\xC3\xA9\xE6\x97\xA5\xF0\x9F\x98\x80z";  // 1 + 2 + 3 + 4 + 1 bytes
    TokenStreamDecoder stream(tok);
    std::vector<std::string> pieces;
    for (std::int64_t id : tok.encode(text)) pieces.push_back(stream.push(id));
    CHECK(stream.finish().empty());
    const std::vector<std::string> expected = {"a", "", "\xC3\xA9", "", "", "\xE6\x97\xA5", "", "", "",
                                               "\xF0\x9F\x98\x80", "z"};
    CHECK(pieces == expected);

    // Invalid sequences are passed on unchanged once they cannot complete; the total equals decode().
    const std::string messy = std::string("\xE6\x97" "a\x80\xC3", 5);
    TokenStreamDecoder s2(tok);
    std::string out;
    for (std::int64_t id : tok.encode(messy)) out += s2.push(id);
    CHECK(out == std::string("\xE6\x97" "a\x80", 4));  // the final lead byte \xC3 is still held
    out += s2.finish();
    CHECK(out == messy);
}

TEST_CASE("train/validation split: the last 10%") {
    std::vector<std::int64_t> tokens;
    for (std::int64_t i = 0; i < 105; ++i) tokens.push_back(i);
    const TokenSplit split = split_train_validation(tokens);
    CHECK(split.train.size() == 95);
    CHECK(split.validation.size() == 10);
    CHECK(split.train.back() == 94);
    CHECK(split.validation.front() == 95);
    CHECK(split_train_validation(tokens, 0.0).validation.empty());
    check_throws<ValueError>([&] { split_train_validation(tokens, 1.0); }, {"validation_fraction", "[0, 1)"});
}

TEST_CASE("random windows: y is x shifted by one, deterministic per seed") {
    auto tokens = counting_tokens(1000);  // token i at position i, so x[b][t] = start + t
    RandomWindows a(tokens, 4, 16, 7), b(tokens, 4, 16, 7), c(tokens, 4, 16, 8);
    const TextBatch first = a.next();
    CHECK(first.x.shape() == Shape{4, 16});
    CHECK(first.x.dtype() == kInt64);
    const auto x = to_ids(first.x), y = to_ids(first.y);
    for (std::size_t row = 0; row < 4; ++row) {
        for (std::size_t t = 0; t < 16; ++t) {
            CHECK(x[row * 16 + t] == x[row * 16] + static_cast<std::int64_t>(t));
            CHECK(y[row * 16 + t] == x[row * 16 + t] + 1);
        }
        CHECK(x[row * 16] >= 0);
        CHECK(x[row * 16] + 16 < 1000);  // the target of the last position exists
    }
    CHECK(same_batch(first, b.next()));
    CHECK(!same_batch(a.next(), c.next()));
    CHECK(a.state().offset == 8);  // one Philox block per window

    // Every start is reachable, the last one included: with n = T + 2 the starts are 0 or 1.
    RandomWindows tight(counting_tokens(18), 64, 16, 1);
    const auto starts = tight.next_starts();
    CHECK(std::count(starts.begin(), starts.end(), 0) > 0);
    CHECK(std::count(starts.begin(), starts.end(), 1) > 0);
    check_throws<ValueError>([] { RandomWindows(counting_tokens(16), 2, 16, 0); },
                             {"16 tokens are fewer than seq + 1 = 17"});
}

TEST_CASE("evenly spaced validation batches cover the split from start to end") {
    const auto tokens = counting_tokens(101);
    const auto batches = evenly_spaced_batches(*tokens, 2, 10, 3);
    REQUIRE(batches.size() == 3);
    CHECK(to_ids(batches[0].x)[0] == 0);
    CHECK(to_ids(batches[2].y).back() == 100);  // the last window ends at the last token
    check_throws<ValueError>([&] { evenly_spaced_batches(*tokens, 2, 200, 1); }, {"fewer than seq + 1 = 201"});
}

TEST_CASE("background loader gives the same batches as the synchronous sampler") {
    auto tokens = counting_tokens(5000);
    RandomWindows sync(tokens, 3, 32, 42);
    BatchLoader loader(RandomWindows(tokens, 3, 32, 42), 3);
    for (int i = 0; i < 20; ++i) {
        if (i % 5 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // let the thread run ahead
        CHECK(loader.state() == sync.state());
        CHECK(same_batch(loader.next(), sync.next()));
    }
}

TEST_CASE("loader state saves and restores the batch sequence exactly") {
    auto tokens = counting_tokens(5000);
    std::vector<TextBatch> reference;
    {
        BatchLoader loader(RandomWindows(tokens, 2, 8, 3));
        for (int i = 0; i < 10; ++i) reference.push_back(loader.next());
    }
    GeneratorState saved;
    {
        BatchLoader loader(RandomWindows(tokens, 2, 8, 3));
        for (int i = 0; i < 6; ++i) loader.next();
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // prefetched batches are not counted
        saved = loader.state();
    }
    BatchLoader resumed(RandomWindows(tokens, 2, 8, 3));
    resumed.next();  // state from before set_state is dropped
    resumed.set_state(saved);
    for (int i = 6; i < 10; ++i) CHECK(same_batch(resumed.next(), reference[static_cast<std::size_t>(i)]));
}

}  // TEST_SUITE
