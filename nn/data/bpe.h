#pragma once
// Byte-level byte-pair encoding (BPE) as GPT-2 defines it: the vocabulary and the encoder.
//
// A BPE vocabulary is
//   - tokens: id -> byte string. Every one of the 256 single bytes is a token, so any text can be encoded;
//   - merges: an ordered list of pairs (a, b) of tokens; merge r (its rank) says "the adjacent tokens a, b become
//     the token a+b". Early merges are the frequent pairs of the training corpus;
//   - special tokens such as "<|endoftext|>": ids for control strings that ordinary text never produces.
//
// Encoding a text (Sennrich et al., "Neural Machine Translation of Rare Words with Subword Units", 2016, as used
// by GPT-2):
//   1. cut the text into pieces with GPT-2's pattern (nn/data/pretokenize.h);
//   2. write each piece as its bytes' single-byte tokens;
//   3. repeatedly merge the adjacent pair with the lowest rank (leftmost first among equal pairs) until no
//      adjacent pair has a merge; the remaining tokens are the piece's ids.
// A piece that occurs again is looked up in a cache instead (English text repeats its words constantly).
//
// Decoding concatenates the tokens' bytes. encode() is lossless: decode(encode(t)) == t for any bytes t.
//
// The model is immutable after construction (which validates it), so one model can be shared by many threads.

#include "nn/data/merge_table.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tg::data {

struct SpecialToken {
    std::int64_t id = 0;
    std::string content;  // the text it stands for, e.g. "<|endoftext|>"
    bool operator==(const SpecialToken&) const = default;
};

// Where a long text may be cut so that encoding the parts one after the other gives the same ids as encoding it
// whole: the first such place at or after `from`, or text.size() if there is none. (encode() cuts long texts
// there to encode them in parallel; nn/data/corpus_tokens.h to encode a corpus piece by piece.)
std::size_t next_safe_cut(std::string_view text, std::size_t from);

class BpeModel {
public:
    // tokens[id] = the bytes of token id (special tokens: their content); merges in rank order as pairs of ids,
    // each merging into the token whose bytes are the concatenation; specials name ids whose token is special.
    // Throws ValueError naming `source` if: a byte has no single-byte token, two non-special tokens have the same
    // bytes, a merge names an id out of range, or its concatenation is not a token, a merge repeats, a special
    // token's id is out of range or repeated.
    BpeModel(std::vector<std::string> tokens, std::vector<std::pair<std::int32_t, std::int32_t>> merges,
             std::vector<SpecialToken> specials, const std::string& source);

    std::int64_t vocab_size() const { return static_cast<std::int64_t>(tokens_.size()); }
    const std::string& token(std::int64_t id) const { return tokens_[static_cast<std::size_t>(id)]; }
    const std::vector<std::string>& tokens() const { return tokens_; }
    const std::vector<std::pair<std::int32_t, std::int32_t>>& merges() const { return merges_; }
    const std::vector<SpecialToken>& specials() const { return specials_; }
    bool is_special(std::int64_t id) const;
    // The id of a special token's content, or -1.
    std::int64_t special_id(std::string_view content) const;
    // The id of the token with these bytes (a non-special token), or -1.
    std::int64_t token_id(std::string_view bytes) const;

    // Ordinary text -> ids (special-token strings in the text are encoded as ordinary text). Texts over a few
    // megabytes are encoded in parallel chunks cut where the pattern cuts anyway: the result is identical.
    std::vector<std::int64_t> encode(std::string_view text) const;
    // The same, but each occurrence of a special token's content becomes that special token's id.
    std::vector<std::int64_t> encode_with_special_tokens(std::string_view text) const;
    // One pre-tokenized piece -> ids (no cache); exposed for the tests and the trainer's check.
    void encode_piece(std::string_view piece, std::vector<std::int32_t>& ids) const;

    bool operator==(const BpeModel& other) const {
        return tokens_ == other.tokens_ && merges_ == other.merges_ && specials_ == other.specials_;
    }

private:
    struct PieceCache;
    void encode_serial(std::string_view text, std::vector<std::int64_t>& out, PieceCache& cache) const;

    std::vector<std::string> tokens_;
    std::vector<std::pair<std::int32_t, std::int32_t>> merges_;
    std::vector<SpecialToken> specials_;
    std::int32_t byte_token_[256] = {};                     // byte -> its single-byte token
    MergeTable merge_of_;                                   // (a, b) -> rank and result
    std::unordered_map<std::string, std::int64_t> id_of_;   // bytes -> id (non-special tokens)
};

}  // namespace tg::data
