#pragma once
// A whole corpus encoded in memory for training, at 2 or 4 bytes a token instead of 8.
//
// Tokenizer::encode returns int64 ids: for the byte tokenizer, 8 bytes of ids per byte of text, so a 100 MB
// corpus would hold 800 MB of ids. encode_corpus keeps them as uint16 (a vocabulary of at most 65,536 ids, like
// every tokenizer tg-gpt trains) or uint32, and encodes the text piece by piece (about 4 MiB at a time), so the
// int64 ids of one piece are the only wide ones alive at once: text + ids stay near 3 bytes per byte of text.
//
// The pieces are cut where no tokenizer's result changes:
//   byte   anywhere (one token per byte);
//   char   before a byte that does not continue a UTF-8 character (a character never spans the cut, and an
//          invalid byte is one unknown token on either side);
//   bpe    just after a newline with visible ASCII on both sides (next_safe_cut, nn/data/bpe.h: no piece of
//          GPT-2's pattern spans it).
// So the ids equal tokenizer.encode(text), id for id (tests/test_corpus_tokens.cpp checks all three kinds).
//
//   std::int64_t unknown = 0;
//   TokenSource ids = encode_corpus(corpus.text, tokenizer, corpus.path, &unknown);   // storage() == UInt16

#include "nn/data/token_source.h"
#include "nn/data/tokenizer.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace tg::data {

inline constexpr std::size_t kCorpusPieceBytes = std::size_t{4} << 20;

// `text` -> the ids of tokenizer.encode(text), stored narrow. origin names them in errors; *unknown (if given)
// receives the number of unknown characters (character level). piece_bytes: how much text is encoded at once.
TokenSource encode_corpus(const std::string& text, const Tokenizer& tokenizer, std::string origin,
                          std::int64_t* unknown = nullptr, std::size_t piece_bytes = kCorpusPieceBytes);

}  // namespace tg::data
