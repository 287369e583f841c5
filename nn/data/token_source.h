#pragma once
// A read-only sequence of token ids that training windows are cut from, wherever the ids live:
//
//   in memory     a std::vector<std::int64_t>, or uint16/uint32 ids (a corpus tokenized on the fly at 2 or 4
//                 bytes a token: nn/data/corpus_tokens.h)
//   mapped        the uint16 or uint32 ids of a token shard (nn/data/token_shard.h), memory-mapped: reading a
//                 window touches only its own pages, so a 10 GB corpus trains with a few MB resident
//
// A TokenSource is a cheap value (a shared owner, a pointer, a length): copies and slices share the ids, and
// the owner (the vector or the mapped file) lives as long as any of them. read() converts to int64 as it
// copies, and checks each id against the source's id limit (the vocabulary size) on the way, so a corrupted
// file is caught at the window that holds the bad id instead of crashing the embedding lookup.
//
//   TokenSource all(tokenizer.encode(text));          // owns the ids
//   TokenSource val = all.slice(n - n_val, n);        // the last n_val ids, shared, no copy
//   std::vector<std::int64_t> window(257);
//   val.read(start, 257, window.data());

#include "core/mapped_file.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tg::data {

class TokenSource {
public:
    enum class Storage { Int64, UInt16, UInt32 };

    TokenSource() = default;  // no tokens
    // Owns `tokens` (moved in). origin names them in error messages.
    explicit TokenSource(std::vector<std::int64_t> tokens, std::string origin = "tokens");
    // Shares `tokens` (kept alive by the pointer). Throws ValueError for a null pointer.
    explicit TokenSource(std::shared_ptr<const std::vector<std::int64_t>> tokens, std::string origin = "tokens");
    // Owns narrow ids (a quarter or half of int64's memory); each id read must be < id_limit.
    TokenSource(std::vector<std::uint16_t> tokens, std::int64_t id_limit, std::string origin = "tokens");
    TokenSource(std::vector<std::uint32_t> tokens, std::int64_t id_limit, std::string origin = "tokens");
    // A view of `tokens` that does not own them: the vector must outlive the view and every copy of it. For
    // synchronous helpers that take a vector (make_batch, evenly_spaced_batches).
    static TokenSource borrow(const std::vector<std::int64_t>& tokens, std::string origin = "tokens");
    // `count` ids of `storage` type starting `offset` bytes into `file`; each id read must be < id_limit.
    // Throws IOError if they do not fit in the file.
    TokenSource(std::shared_ptr<const MappedFile> file, std::size_t offset, Storage storage, std::int64_t count,
                std::int64_t id_limit);

    std::int64_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    Storage storage() const { return storage_; }
    // What the ids are, for messages: "tokens", or a file's path.
    const std::string& origin() const { return origin_; }

    // Copies ids [start, start + count) to out as int64. Throws IndexError if the range runs outside the
    // source, or if an id is >= the id limit (naming the id, its position and the origin).
    void read(std::int64_t start, std::int64_t count, std::int64_t* out) const;
    std::int64_t at(std::int64_t i) const;
    // Ids [begin, end), sharing the storage. Throws IndexError unless 0 <= begin <= end <= size().
    TokenSource slice(std::int64_t begin, std::int64_t end) const;
    // All ids as a vector (for tests and small sources).
    std::vector<std::int64_t> to_vector() const;

private:
    template <class T>  // the narrow owning constructors
    TokenSource(std::shared_ptr<const std::vector<T>> tokens, Storage storage, std::int64_t id_limit, std::string origin);

    std::shared_ptr<const void> owner_;        // keeps the ids alive
    const MappedFile* file_ = nullptr;         // mapped sources: told about each read to bound the resident set
    const void* data_ = nullptr;               // the first id of this source
    Storage storage_ = Storage::Int64;
    std::int64_t size_ = 0;
    std::int64_t first_ = 0;                   // position of data_ in the original source (for messages)
    std::int64_t id_limit_ = 0;                // ids must be < this; 0: no check (in-memory ids)
    std::string origin_ = "tokens";
};

}  // namespace tg::data
