#pragma once
// Token shards: a tokenized corpus on disk, ready to be memory-mapped for training (`tg-gpt prepare` writes
// them, `tg-gpt train --data DIR` reads them). The layout of llm.c's and nanoGPT's .bin files — a small header,
// then every token id as a little-endian unsigned integer — with a header of our own that says what a reader
// must check before trusting the ids:
//
//   offset  size  field
//        0     8  magic "TGTOKENS"
//        8     4  version (1), uint32
//       12     4  bytes per token: 2 (uint16, when the vocabulary has at most 65,536 ids) or 4 (uint32)
//       16     8  token count n, uint64
//       24     8  vocabulary size V, uint64 (every id is < V)
//       32     8  the largest id in the file, uint64 (< V; lets a reader check the ids without reading them)
//       40     8  tokenizer fingerprint, uint64: FNV-1a of the tokenizer's JSON (tokenizer_fingerprint), 0 if
//                 unknown; a reader compares it with the tokenizer it was given
//       48    16  reserved, zero
//       64   n·w  the ids
//
// open_token_shard validates everything it can without reading the ids: the magic (a foreign file), the
// version, the width, the file size against 64 + n·w (a truncated or padded file), the largest id against V.
// The ids themselves are checked against V as windows are read (TokenSource::read), at the price of one
// compare per window. Writing is atomic (core/file_io.h): a crash leaves the old file or the new, whole.

#include "core/file_io.h"
#include "nn/data/token_source.h"
#include "nn/data/tokenizer.h"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tg::data {

inline constexpr char kTokenShardMagic[] = "TGTOKENS";  // 8 bytes in the file (without the terminating NUL)
inline constexpr std::uint32_t kTokenShardVersion = 1;
inline constexpr std::size_t kTokenShardHeaderBytes = 64;

struct TokenShardInfo {
    std::string path;
    std::uint32_t version = kTokenShardVersion;
    std::uint32_t bytes_per_token = 2;
    std::int64_t count = 0;
    std::int64_t vocab_size = 0;
    std::int64_t max_id = 0;
    std::uint64_t tokenizer_fingerprint = 0;
};

struct TokenShard {
    TokenShardInfo info;
    TokenSource tokens;  // memory-mapped, ids checked against info.vocab_size as they are read
};

// 2 for a vocabulary of at most 65,536 ids, else 4. Throws ValueError for vocab_size < 1 or > 2^32.
std::uint32_t shard_bytes_per_token(std::int64_t vocab_size);

// 64-bit FNV-1a hash of a text (Fowler–Noll–Vo: h = (h ^ byte) · 1099511628211, from 14695981039346656037).
std::uint64_t fnv1a64(std::string_view text);
// The identity of a tokenizer stored in shard headers: fnv1a64 of its JSON (Tokenizer::to_json).
std::uint64_t tokenizer_fingerprint(const Tokenizer& tokenizer);

// Writes `tokens` as a shard. Throws ValueError (nothing written) if an id is negative or >= vocab_size,
// IOError if the file cannot be written.
void write_token_shard(const std::string& path, const TokenSource& tokens, std::int64_t vocab_size,
                       std::uint64_t tokenizer_fingerprint);

// Writes a shard whose ids arrive piece by piece (a corpus too large to hold its ids in memory): append()
// checks and narrows each piece and writes it out, commit() writes the header (the count and the largest id are
// known only then) and renames the file into place (core/file_io.h's AtomicFileWriter). A writer destroyed
// without commit() (an exception on the way) leaves `path` as it was.
//
//   TokenShardWriter shard("train.bin", tokenizer.vocab_size(), tokenizer_fingerprint(tokenizer));
//   for (...) shard.append(ids_of_the_next_piece);
//   shard.commit();
class TokenShardWriter {
public:
    TokenShardWriter(const std::string& path, std::int64_t vocab_size, std::uint64_t tokenizer_fingerprint);
    // Throws ValueError for an id outside [0, vocab_size), naming it and its position in the shard.
    void append(std::span<const std::int64_t> ids);
    void commit();
    std::int64_t count() const { return count_; }

private:
    AtomicFileWriter out_;
    std::int64_t vocab_size_;
    std::uint64_t fingerprint_;
    std::uint32_t width_;
    std::int64_t count_ = 0, max_id_ = 0;
    std::vector<unsigned char> narrow_;  // the piece being written, at the shard's width
};

// Maps and validates a shard. Throws IOError naming the path and what is wrong: missing, shorter than the
// header, foreign magic, unknown version or width, size not 64 + n·w, largest id >= V.
TokenShard open_token_shard(const std::string& path);

// Checks a shard against the tokenizer a run uses: the same vocabulary size, and (when both are known) the
// same fingerprint. Throws ValueError naming both values.
void check_shard_matches(const TokenShardInfo& shard, const Tokenizer& tokenizer);

}  // namespace tg::data
