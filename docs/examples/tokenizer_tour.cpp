// The byte-level BPE tokenizer, quoted by docs/tokenizer.md. Built and run by `meson test` (the test
// 'doc-tokenizer-tour'): it prints what the page shows and checks the page's claims with expect(); a false
// claim makes the program exit non-zero.
//
//   build/docs/doc-tokenizer-tour

#include "nn/data/bpe.h"
#include "nn/data/bpe_train.h"
#include "nn/data/pretokenize.h"
#include "nn/data/tokenizer.h"
#include "nn/data/utf8.h"

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

using tg::data::Tokenizer;

namespace {

int failures = 0;

void expect(bool holds, const std::string& claim) {
    std::cout << (holds ? "  ok: " : "  FAILED: ") << claim << '\n';
    if (!holds) ++failures;
}

void section(const std::string& title) { std::cout << "\n== " << title << " ==\n"; }

// "a|b|c" with newlines shown as \n, so pieces and tokens are visible.
std::string show(const std::vector<std::string>& parts) {
    std::string out;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (i) out += '|';
        for (char c : parts[i]) out += c == '\n' ? std::string("\\n") : std::string(1, c);
    }
    return out;
}

bool whole_characters(const std::string& s) {
    for (std::size_t i = 0; i < s.size();) {
        const int len = tg::data::utf8_valid_length(reinterpret_cast<const unsigned char*>(s.data()) + i, s.size() - i);
        if (len == 0) return false;
        i += static_cast<std::size_t>(len);
    }
    return true;
}

}  // namespace

int main() {
    section("1. pre-tokenization: GPT-2's pattern cuts the text into pieces");
    // [pretokenize]
    std::vector<std::string_view> views;
    tg::data::gpt2_pretokenize("Hello  world! I'm 42 years old.\n", views);
    const std::vector<std::string> pieces(views.begin(), views.end());
    std::cout << show(pieces) << '\n';  // Hello| | world|!| I|'m| 42| years| old|.|\n
    // [/pretokenize]
    expect(pieces == std::vector<std::string>{"Hello", " ", " world", "!", " I", "'m", " 42", " years", " old", ".", "\n"},
           "a run of spaces leaves its last space to the next word; contractions and numbers are pieces");

    section("2. training: the most frequent pair becomes a token, again and again");
    // [train]
    std::string corpus;
    for (int i = 0; i < 200; ++i) corpus += "the cat sat on the mat. the dog sat on the log.<|endoftext|>";
    tg::data::BpeTrainOptions options;
    options.vocab_size = 256 + 12 + 1;  // the bytes, 12 merges, <|endoftext|>
    const Tokenizer tok = Tokenizer::bpe(tg::data::train_bpe(corpus, options));
    const tg::data::BpeModel& model = *tok.bpe_model();
    std::vector<std::string> merged;
    for (const auto& [a, b] : model.merges()) merged.push_back(model.token(a) + model.token(b));
    std::cout << "merges in order: " << show(merged) << '\n';
    // [/train]
    expect(merged.size() == 12 && merged[0] == "at",
           "the first merge is a most frequent pair: \"a\"+\"t\" (4 per document, tied with \"t\"+\"h\" and "
           "\"h\"+\"e\"; the smaller ids win)");
    expect(tok.vocab_size() == 269 && tok.special_token_id("<|endoftext|>") == 268,
           "ids: 0..255 bytes, 256.. merges, then the special token");

    section("3. encoding and decoding");
    // [encode]
    const std::vector<std::int64_t> ids = tok.encode("the cat sat on the log.");
    std::vector<std::string> tokens;
    for (std::int64_t id : ids) tokens.push_back(tok.token_bytes(id));
    std::cout << ids.size() << " tokens: " << show(tokens) << '\n';
    const std::string back = tok.decode(ids);
    // [/encode]
    expect(back == "the cat sat on the log.", "decode(encode(text)) == text");
    expect(ids.size() < std::string("the cat sat on the log.").size(), "fewer tokens than bytes");
    expect(tok.encode("<|endoftext|>").size() > 1 &&
               tok.encode_with_special_tokens("<|endoftext|>") == std::vector<std::int64_t>{268},
           "special tokens only with encode_with_special_tokens");
    expect(tok.decode(tok.encode("caf\xC3\xA9 \xFF")) == "caf\xC3\xA9 \xFF", "lossless even for invalid UTF-8");

    section("4. streaming decode holds back half characters");
    // [stream]
    tg::data::TokenStreamDecoder stream(tok);
    std::string shown;
    bool whole = true;
    for (std::int64_t id : tok.encode("na\xC3\xAFve \xF0\x9F\x98\x80")) {  // "ï" and "😀" arrive byte by byte
        const std::string part = stream.push(id);                          // complete characters only
        whole = whole && whole_characters(part);
        shown += part;
    }
    shown += stream.finish();
    // [/stream]
    expect(whole, "every push() returned whole UTF-8 characters");
    expect(shown == "na\xC3\xAFve \xF0\x9F\x98\x80", "together they are the text");

    section("5. files: Hugging Face tokenizer.json, written and read");
    // [save]
    const std::string path = (std::filesystem::temp_directory_path() / "tg-doc-tokenizer.json").string();
    tok.save(path);                               // atomically; loads in Hugging Face's `tokenizers` too
    const Tokenizer loaded = Tokenizer::load(path);  // also: a folder with GPT-2's encoder.json + vocab.bpe
    // [/save]
    expect(loaded == tok && loaded.encode("the dog") == tok.encode("the dog"), "save -> load gives the same tokenizer");
    std::filesystem::remove(path);

    std::cout << (failures ? "\nSOME CLAIMS FAILED\n" : "\nall claims hold\n");
    return failures ? 1 : 0;
}
