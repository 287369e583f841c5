#pragma once
// Tokenizers: text <-> token ids for the GPT.
//
// Byte level (the default, vocab 256). A token is one byte of the UTF-8 text, id = the byte's value. Every text
// round-trips exactly (any UTF-8, and even invalid bytes), nothing is ever unknown, and there is no vocabulary
// to store. The price: a non-ASCII character takes 2-4 tokens, and the model must learn to spell them.
//
// Character level (an option). The vocabulary is built from a corpus: id 0 is the unknown token, ids 1..V−1
// are the distinct Unicode code points of the corpus in increasing order (so the same corpus always gives the
// same ids). A character that was not in the corpus, or a byte that is not valid UTF-8, has no id of its own:
// encode() maps it to the unknown id 0 and counts it, encode_strict() throws a ValueError naming it and its
// byte offset. decode() writes the unknown id as U+FFFD, the Unicode replacement character "�". Smaller
// sequences than byte level for non-English text, but the vocabulary is tied to the corpus.
//
//   Tokenizer tok = Tokenizer::byte_level();
//   std::vector<std::int64_t> ids = tok.encode("héllo");   // {104, 195, 169, 108, 108, 111}
//   tok.decode(ids) == "héllo"
//
// Byte-level BPE (GPT-2's tokenizer, or one trained on your corpus: nn/data/bpe.h, bpe_train.h, docs/tokenizer.md).
// Tokens are byte strings ("the", " world", "\n\n"), so common words are one token each; any bytes still encode
// (every single byte is a token) and decode exactly. Special tokens such as "<|endoftext|>" are produced only by
// encode_with_special_tokens(); encode() treats their text as ordinary text.
//
//   Tokenizer gpt2 = Tokenizer::load("path/to/gpt2");        // encoder.json + vocab.bpe, or tokenizer.json
//   gpt2.encode("Hello world") == {15496, 995}
//   Tokenizer mine = Tokenizer::bpe(train_bpe(corpus, {.vocab_size = 4096}));
//   mine.save("tokenizer.json");                              // Hugging Face format, loads in `tokenizers`
//
// to_json()/from_json() store the tokenizer in a checkpoint's config.json:
//   {"kind":"byte","vocab_size":256}
//   {"kind":"char","vocab_size":4,"chars":["\n","a","b"]}        (chars = ids 1.., the unknown id 0 is implied)
//   {"kind":"bpe","vocab_size":4096,"tokenizer":{...}}         (the whole Hugging Face tokenizer.json object)

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace tg::data {

class BpeModel;

class Tokenizer {
public:
    enum class Kind { Byte, Char, Bpe };
    static constexpr std::int64_t kUnknownId = 0;  // character level only

    static Tokenizer byte_level();
    // Throws ValueError if `corpus` holds no valid UTF-8 character.
    static Tokenizer character_level(const std::string& corpus);
    static Tokenizer bpe(BpeModel model);
    // A byte-level BPE from `path`: a tokenizer.json file, or a folder holding tokenizer.json, or GPT-2's
    // encoder.json + vocab.bpe, or Hugging Face's vocab.json + merges.txt (tried in that order). IOError if there
    // is no such file, ValueError (naming the file) if it is malformed.
    static Tokenizer load(const std::string& path);
    // Writes the Hugging Face tokenizer.json form atomically. A byte tokenizer is written as the equivalent BPE
    // (256 byte tokens, id = byte value, no merges: it loads back as kind bpe and encodes the same ids); a
    // character tokenizer has no such form (ValueError).
    void save(const std::string& path) const;

    Kind kind() const { return kind_; }
    std::string kind_name() const;  // "byte", "char" or "bpe"
    std::int64_t vocab_size() const;

    // Text -> ids. Character level: unknown characters and invalid bytes become kUnknownId; *unknown (if given)
    // receives how many.
    std::vector<std::int64_t> encode(const std::string& text, std::int64_t* unknown = nullptr) const;
    // The same, but an unknown character throws ValueError naming it and its byte offset.
    std::vector<std::int64_t> encode_strict(const std::string& text) const;
    // Like encode(), but the text of a special token ("<|endoftext|>") becomes its id (BPE only; the other kinds
    // have no special tokens and encode as encode()).
    std::vector<std::int64_t> encode_with_special_tokens(const std::string& text) const;
    // The id of a special token, or -1 if the tokenizer has none by that name.
    std::int64_t special_token_id(const std::string& content) const;
    // The BPE model (nullptr unless kind() == Bpe).
    const BpeModel* bpe_model() const { return bpe_.get(); }
    // Ids -> text. Throws IndexError naming an id outside [0, vocab_size).
    std::string decode(const std::vector<std::int64_t>& ids) const;
    // The bytes of one token (byte level: one byte, possibly part of a character).
    std::string token_bytes(std::int64_t id) const;

    std::string to_json() const;
    // Throws ValueError on a malformed text (unknown kind, vocab_size that disagrees, a "char" that is not
    // exactly one character, a repeated character).
    static Tokenizer from_json(const std::string& text);

    bool operator==(const Tokenizer& other) const;

private:
    Kind kind_ = Kind::Byte;
    std::vector<std::string> chars_;                   // char level: id i+1 -> its UTF-8 bytes
    std::unordered_map<std::uint32_t, std::int64_t> index_;  // char level: code point -> id
    std::shared_ptr<const BpeModel> bpe_;              // BPE: immutable, shared by copies
    void build_index();
};

// Turns a stream of token ids back into text as it is generated, without ever cutting a character in half:
// with the byte-level tokenizer the bytes of a multi-byte UTF-8 character arrive one token at a time, and a
// terminal given half a character prints garbage. push() returns the text that is complete so far (possibly
// empty) and keeps the bytes of an unfinished character; bytes that cannot form valid UTF-8 are passed on
// unchanged as soon as that is clear. Concatenating every push() and finish() gives exactly decode(ids).
class TokenStreamDecoder {
public:
    explicit TokenStreamDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
    std::string push(std::int64_t id);
    std::string finish();  // whatever is still held back (an unfinished character at the end of the stream)

private:
    const Tokenizer& tokenizer_;
    std::string pending_;  // the first bytes of a character not yet complete
};

}  // namespace tg::data
