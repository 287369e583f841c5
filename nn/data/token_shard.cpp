#include "nn/data/token_shard.h"

#include "core/error.h"
#include "core/file_io.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <memory>
#include <vector>

namespace tg::data {

// The ids are mapped and read as native integers: the file's little-endian layout is the machine's.
static_assert(std::endian::native == std::endian::little, "token shards are read in place: little-endian hosts only");

namespace {

template <class T>
void put(unsigned char* header, std::size_t offset, T value) {
    std::memcpy(header + offset, &value, sizeof(T));
}

template <class T>
T get(const std::byte* header, std::size_t offset) {
    T value;
    std::memcpy(&value, header + offset, sizeof(T));
    return value;
}

std::string hex(std::uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

// The 8 magic bytes as text a person can read: printable ASCII as is, the rest as \xNN.
std::string printable(const std::byte* bytes, std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(bytes[i]);
        if (c >= 32 && c < 127) {
            out += static_cast<char>(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "\\x%02X", static_cast<unsigned>(c));
            out += buf;
        }
    }
    return out;
}

}  // namespace

std::uint32_t shard_bytes_per_token(std::int64_t vocab_size) {
    if (vocab_size < 1 || vocab_size > (std::int64_t{1} << 32)) {
        throw ValueError("token shard: vocab_size " + std::to_string(vocab_size) + " is not in [1, 2^32]");
    }
    return vocab_size <= 65536 ? 2 : 4;
}

std::uint64_t fnv1a64(std::string_view text) {
    std::uint64_t h = 14695981039346656037ULL;
    for (const char c : text) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ULL;
    }
    return h;
}

std::uint64_t tokenizer_fingerprint(const Tokenizer& tokenizer) { return fnv1a64(tokenizer.to_json()); }

TokenShardWriter::TokenShardWriter(const std::string& path, std::int64_t vocab_size, std::uint64_t fingerprint)
    : out_(path, "token shard"), vocab_size_(vocab_size), fingerprint_(fingerprint),
      width_(shard_bytes_per_token(vocab_size)) {
    const unsigned char placeholder[kTokenShardHeaderBytes] = {};
    out_.write(placeholder, sizeof(placeholder));  // the count and the largest id are known only at the end
}

void TokenShardWriter::append(std::span<const std::int64_t> ids) {
    narrow_.resize(ids.size() * width_);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        const std::int64_t id = ids[i];
        if (id < 0 || id >= vocab_size_) {
            throw ValueError("write_token_shard: token id " + std::to_string(id) + " at position " +
                             std::to_string(count_ + static_cast<std::int64_t>(i)) + " is outside the vocabulary [0, " +
                             std::to_string(vocab_size_) + ")");
        }
        max_id_ = std::max(max_id_, id);
        if (width_ == 2) {
            put<std::uint16_t>(narrow_.data(), 2 * i, static_cast<std::uint16_t>(id));
        } else {
            put<std::uint32_t>(narrow_.data(), 4 * i, static_cast<std::uint32_t>(id));
        }
    }
    out_.write(narrow_.data(), narrow_.size());
    count_ += static_cast<std::int64_t>(ids.size());
}

void TokenShardWriter::commit() {
    unsigned char header[kTokenShardHeaderBytes] = {};
    std::memcpy(header, kTokenShardMagic, 8);
    put<std::uint32_t>(header, 8, kTokenShardVersion);
    put<std::uint32_t>(header, 12, width_);
    put<std::uint64_t>(header, 16, static_cast<std::uint64_t>(count_));
    put<std::uint64_t>(header, 24, static_cast<std::uint64_t>(vocab_size_));
    put<std::uint64_t>(header, 32, static_cast<std::uint64_t>(max_id_));
    put<std::uint64_t>(header, 40, fingerprint_);
    out_.rewrite_start(header, sizeof(header));
    out_.commit();
}

void write_token_shard(const std::string& path, const TokenSource& tokens, std::int64_t vocab_size,
                       std::uint64_t fingerprint) {
    TokenShardWriter shard(path, vocab_size, fingerprint);
    constexpr std::int64_t kChunk = 1 << 16;  // ids converted and written at a time
    std::vector<std::int64_t> ids(static_cast<std::size_t>(std::min(kChunk, tokens.size())));
    for (std::int64_t start = 0; start < tokens.size(); start += kChunk) {
        const std::int64_t n = std::min(kChunk, tokens.size() - start);
        tokens.read(start, n, ids.data());
        shard.append(std::span<const std::int64_t>(ids.data(), static_cast<std::size_t>(n)));
    }
    shard.commit();
}

TokenShard open_token_shard(const std::string& path) {
    auto file = std::make_shared<const MappedFile>(path);
    const std::string where = "token shard " + path;
    if (file->size() < kTokenShardHeaderBytes) {
        throw IOError(where + ": " + std::to_string(file->size()) + " bytes, shorter than the " +
                      std::to_string(kTokenShardHeaderBytes) + "-byte header (a truncated or foreign file)");
    }
    const std::byte* h = file->data();
    if (std::memcmp(h, kTokenShardMagic, 8) != 0) {
        throw IOError(where + ": not a tapegrad token shard: it starts with \"" + printable(h, 8) +
                      "\", not \"" + kTokenShardMagic + "\" (write one with `tg-gpt prepare`)");
    }
    TokenShardInfo info;
    info.path = path;
    info.version = get<std::uint32_t>(h, 8);
    info.bytes_per_token = get<std::uint32_t>(h, 12);
    const auto count = get<std::uint64_t>(h, 16), vocab = get<std::uint64_t>(h, 24), max_id = get<std::uint64_t>(h, 32);
    info.tokenizer_fingerprint = get<std::uint64_t>(h, 40);
    if (info.version != kTokenShardVersion) {
        throw IOError(where + ": version " + std::to_string(info.version) + ", this program reads version " +
                      std::to_string(kTokenShardVersion));
    }
    if (info.bytes_per_token != 2 && info.bytes_per_token != 4) {
        throw IOError(where + ": " + std::to_string(info.bytes_per_token) + " bytes per token (expected 2 or 4)");
    }
    if (vocab < 1 || vocab > (std::uint64_t{1} << 32) || shard_bytes_per_token(static_cast<std::int64_t>(vocab)) !=
                                                             info.bytes_per_token) {
        throw IOError(where + ": vocabulary size " + std::to_string(vocab) + " does not fit " +
                      std::to_string(info.bytes_per_token) + "-byte tokens");
    }
    const std::uint64_t payload = file->size() - kTokenShardHeaderBytes;
    if (count > payload / info.bytes_per_token || payload != count * info.bytes_per_token) {
        throw IOError(where + ": the header says " + std::to_string(count) + " tokens of " +
                      std::to_string(info.bytes_per_token) + " bytes (" + std::to_string(kTokenShardHeaderBytes) +
                      " + " + std::to_string(count) + " x " + std::to_string(info.bytes_per_token) +
                      " bytes), but the file has " + std::to_string(file->size()) + " bytes (" +
                      (payload < count * info.bytes_per_token ? "truncated" : "extra bytes at the end") + ")");
    }
    if (count > 0 && max_id >= vocab) {
        throw IOError(where + ": its largest token id " + std::to_string(max_id) + " is outside the vocabulary of " +
                      std::to_string(vocab));
    }
    info.count = static_cast<std::int64_t>(count);
    info.vocab_size = static_cast<std::int64_t>(vocab);
    info.max_id = static_cast<std::int64_t>(max_id);
    const auto storage = info.bytes_per_token == 2 ? TokenSource::Storage::UInt16 : TokenSource::Storage::UInt32;
    TokenSource tokens(std::move(file), kTokenShardHeaderBytes, storage, info.count, info.vocab_size);
    return {std::move(info), std::move(tokens)};
}

void check_shard_matches(const TokenShardInfo& shard, const Tokenizer& tokenizer) {
    if (shard.vocab_size != tokenizer.vocab_size()) {
        throw ValueError("token shard " + shard.path + ": vocabulary size " + std::to_string(shard.vocab_size) +
                         ", but the tokenizer (" + tokenizer.kind_name() + ") has " +
                         std::to_string(tokenizer.vocab_size()) + ": the shard was written with another tokenizer");
    }
    const std::uint64_t expected = tokenizer_fingerprint(tokenizer);
    if (shard.tokenizer_fingerprint != 0 && shard.tokenizer_fingerprint != expected) {
        throw ValueError("token shard " + shard.path + ": tokenizer fingerprint " + hex(shard.tokenizer_fingerprint) +
                         ", but the tokenizer's is " + hex(expected) + ": the shard was written with another "
                         "tokenizer of the same vocabulary size");
    }
}

}  // namespace tg::data
