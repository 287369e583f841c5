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
// to_json()/from_json() store the tokenizer in a checkpoint's config.json:
//   {"kind":"byte","vocab_size":256}
//   {"kind":"char","vocab_size":4,"chars":["\n","a","b"]}        (chars = ids 1.., the unknown id 0 is implied)

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace tg::data {

class Tokenizer {
public:
    enum class Kind { Byte, Char };
    static constexpr std::int64_t kUnknownId = 0;  // character level only

    static Tokenizer byte_level();
    // Throws ValueError if `corpus` holds no valid UTF-8 character.
    static Tokenizer character_level(const std::string& corpus);

    Kind kind() const { return kind_; }
    std::string kind_name() const;  // "byte" or "char"
    std::int64_t vocab_size() const;

    // Text -> ids. Character level: unknown characters and invalid bytes become kUnknownId; *unknown (if given)
    // receives how many.
    std::vector<std::int64_t> encode(const std::string& text, std::int64_t* unknown = nullptr) const;
    // The same, but an unknown character throws ValueError naming it and its byte offset.
    std::vector<std::int64_t> encode_strict(const std::string& text) const;
    // Ids -> text. Throws IndexError naming an id outside [0, vocab_size).
    std::string decode(const std::vector<std::int64_t>& ids) const;
    // The bytes of one token (byte level: one byte, possibly part of a character).
    std::string token_bytes(std::int64_t id) const;

    std::string to_json() const;
    // Throws ValueError on a malformed text (unknown kind, vocab_size that disagrees, a "char" that is not
    // exactly one character, a repeated character).
    static Tokenizer from_json(const std::string& text);

    bool operator==(const Tokenizer& other) const { return kind_ == other.kind_ && chars_ == other.chars_; }

private:
    Kind kind_ = Kind::Byte;
    std::vector<std::string> chars_;                   // char level: id i+1 -> its UTF-8 bytes
    std::unordered_map<std::uint32_t, std::int64_t> index_;  // char level: code point -> id
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
