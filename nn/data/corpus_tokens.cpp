#include "nn/data/corpus_tokens.h"

#include "nn/data/bpe.h"

#include <algorithm>
#include <string_view>
#include <vector>

namespace tg::data {

namespace {

// The first place at or after `from` where `text` may be cut for this tokenizer (header comment), or its end.
std::size_t next_cut(std::string_view text, std::size_t from, Tokenizer::Kind kind) {
    if (from >= text.size()) return text.size();
    switch (kind) {
        case Tokenizer::Kind::Byte: return from;
        case Tokenizer::Kind::Char:
            for (std::size_t i = from; i < text.size(); ++i) {
                if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) return i;  // not a continuation byte
            }
            return text.size();
        case Tokenizer::Kind::Bpe: return next_safe_cut(text, from);
    }
    return text.size();
}

template <class Id>
TokenSource encode_narrow(const std::string& text, const Tokenizer& tokenizer, std::string origin,
                          std::int64_t* unknown, std::size_t piece_bytes) {
    std::vector<Id> ids;
    // Byte and char: at most one token per byte; BPE: about one per 3-4 bytes, the vector grows as needed.
    ids.reserve(tokenizer.kind() == Tokenizer::Kind::Bpe ? text.size() / 4 : text.size());
    std::int64_t n_unknown = 0;
    if (tokenizer.kind() == Tokenizer::Kind::Byte) {  // the id is the byte: no need for wide ids at all
        for (const char c : text) ids.push_back(static_cast<unsigned char>(c));
        if (unknown) *unknown = 0;
        return TokenSource(std::move(ids), tokenizer.vocab_size(), std::move(origin));
    }
    const std::string_view all(text);
    for (std::size_t begin = 0; begin < all.size();) {
        const std::size_t end = next_cut(all, begin + std::max<std::size_t>(piece_bytes, 1), tokenizer.kind());
        std::int64_t piece_unknown = 0;
        const std::vector<std::int64_t> wide = tokenizer.encode(std::string(all.substr(begin, end - begin)), &piece_unknown);
        ids.insert(ids.end(), wide.begin(), wide.end());  // 0 <= id < vocab_size <= 1 + the largest Id
        n_unknown += piece_unknown;
        begin = end;
    }
    if (unknown) *unknown = n_unknown;
    return TokenSource(std::move(ids), tokenizer.vocab_size(), std::move(origin));
}

}  // namespace

TokenSource encode_corpus(const std::string& text, const Tokenizer& tokenizer, std::string origin,
                          std::int64_t* unknown, std::size_t piece_bytes) {
    if (tokenizer.vocab_size() <= 65536) {
        return encode_narrow<std::uint16_t>(text, tokenizer, std::move(origin), unknown, piece_bytes);
    }
    return encode_narrow<std::uint32_t>(text, tokenizer, std::move(origin), unknown, piece_bytes);
}

}  // namespace tg::data
