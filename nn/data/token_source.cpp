#include "nn/data/token_source.h"

#include "core/error.h"

#include <algorithm>
#include <cstring>

namespace tg::data {

namespace {

std::size_t bytes_per_id(TokenSource::Storage s) {
    switch (s) {
        case TokenSource::Storage::UInt16: return 2;
        case TokenSource::Storage::UInt32: return 4;
        case TokenSource::Storage::Int64: return 8;
    }
    return 8;
}

// Widens `count` ids of type T to int64 and returns the largest (for the id-limit check, one compare per
// window instead of one branch per id in the copy loop).
template <class T>
std::int64_t widen(const void* from, std::int64_t count, std::int64_t* out) {
    const T* src = static_cast<const T*>(from);
    std::int64_t largest = 0;
    for (std::int64_t i = 0; i < count; ++i) {
        out[i] = static_cast<std::int64_t>(src[i]);
        largest = std::max(largest, out[i]);
    }
    return largest;
}

}  // namespace

TokenSource::TokenSource(std::vector<std::int64_t> tokens, std::string origin)
    : TokenSource(std::make_shared<const std::vector<std::int64_t>>(std::move(tokens)), std::move(origin)) {}

TokenSource::TokenSource(std::shared_ptr<const std::vector<std::int64_t>> tokens, std::string origin)
    : origin_(std::move(origin)) {
    if (!tokens) throw ValueError("TokenSource: no tokens (null pointer)");
    data_ = tokens->data();
    size_ = static_cast<std::int64_t>(tokens->size());
    owner_ = std::move(tokens);
}

namespace {

template <class T>
std::shared_ptr<const std::vector<T>> own(std::vector<T> tokens) {
    return std::make_shared<const std::vector<T>>(std::move(tokens));
}

}  // namespace

template <class T>
TokenSource::TokenSource(std::shared_ptr<const std::vector<T>> tokens, Storage storage, std::int64_t id_limit,
                         std::string origin)
    : data_(tokens->data()), storage_(storage), size_(static_cast<std::int64_t>(tokens->size())), id_limit_(id_limit),
      origin_(std::move(origin)) {
    owner_ = std::move(tokens);
}

TokenSource::TokenSource(std::vector<std::uint16_t> tokens, std::int64_t id_limit, std::string origin)
    : TokenSource(own(std::move(tokens)), Storage::UInt16, id_limit, std::move(origin)) {}

TokenSource::TokenSource(std::vector<std::uint32_t> tokens, std::int64_t id_limit, std::string origin)
    : TokenSource(own(std::move(tokens)), Storage::UInt32, id_limit, std::move(origin)) {}

TokenSource TokenSource::borrow(const std::vector<std::int64_t>& tokens, std::string origin) {
    TokenSource s;
    s.data_ = tokens.data();
    s.size_ = static_cast<std::int64_t>(tokens.size());
    s.origin_ = std::move(origin);
    return s;  // owner_ stays empty: the caller keeps the vector alive
}

TokenSource::TokenSource(std::shared_ptr<const MappedFile> file, std::size_t offset, Storage storage,
                         std::int64_t count, std::int64_t id_limit)
    : storage_(storage), size_(count), id_limit_(id_limit) {
    if (!file) throw ValueError("TokenSource: no file (null pointer)");
    origin_ = file->path();
    const std::size_t need = offset + static_cast<std::size_t>(count) * bytes_per_id(storage);
    if (count < 0 || need > file->size()) {
        throw IOError("TokenSource: " + origin_ + ": " + std::to_string(count) + " ids of " +
                      std::to_string(bytes_per_id(storage)) + " bytes at offset " + std::to_string(offset) +
                      " need " + std::to_string(need) + " bytes, the file has " + std::to_string(file->size()));
    }
    file_ = file.get();
    data_ = file->data() + offset;
    owner_ = std::move(file);
}

void TokenSource::read(std::int64_t start, std::int64_t count, std::int64_t* out) const {
    if (start < 0 || count < 0 || start + count > size_) {
        throw IndexError("TokenSource::read: ids [" + std::to_string(start) + ", " + std::to_string(start + count) +
                         ") run outside the " + std::to_string(size_) + " ids of " + origin_);
    }
    const std::size_t width = bytes_per_id(storage_);
    const void* from = static_cast<const std::byte*>(data_) + static_cast<std::size_t>(start) * width;
    std::int64_t largest = 0;
    switch (storage_) {
        case Storage::UInt16: largest = widen<std::uint16_t>(from, count, out); break;
        case Storage::UInt32: largest = widen<std::uint32_t>(from, count, out); break;
        case Storage::Int64: std::memcpy(out, from, static_cast<std::size_t>(count) * sizeof(std::int64_t)); break;
    }
    // A read maps more memory than the bytes it reads: a page fault maps the whole page-cache folio it lands
    // in, and Linux keeps file data in large folios (up to 2 MiB, the PMD size, on x86-64 and arm64 with 4 KiB
    // pages). Counting only the bytes let a sampler of 514-byte windows over a freshly written 10 GB shard hold
    // 340 MB after a few dozen steps (measured, docs/gpt.md §3): so each read counts as the folios of its first
    // and last byte as well.
    constexpr std::size_t kLargestFolio = std::size_t{2} << 20;
    if (file_) file_->note_read(static_cast<std::size_t>(count) * width + 2 * kLargestFolio);
    if (id_limit_ > 0 && largest >= id_limit_) {
        const std::int64_t* bad = std::find_if(out, out + count, [&](std::int64_t id) { return id >= id_limit_; });
        const std::int64_t position = first_ + start + (bad - out);
        throw IndexError("TokenSource::read: " + origin_ + ": token id " + std::to_string(*bad) + " at position " +
                         std::to_string(position) + " is outside the vocabulary of " + std::to_string(id_limit_) +
                         " (a corrupted or foreign file?)");
    }
}

std::int64_t TokenSource::at(std::int64_t i) const {
    std::int64_t id = 0;
    read(i, 1, &id);
    return id;
}

TokenSource TokenSource::slice(std::int64_t begin, std::int64_t end) const {
    if (begin < 0 || begin > end || end > size_) {
        throw IndexError("TokenSource::slice: [" + std::to_string(begin) + ", " + std::to_string(end) +
                         ") is not a range of the " + std::to_string(size_) + " ids of " + origin_);
    }
    TokenSource s = *this;
    s.data_ = static_cast<const std::byte*>(data_) + static_cast<std::size_t>(begin) * bytes_per_id(storage_);
    s.size_ = end - begin;
    s.first_ = first_ + begin;
    return s;
}

std::vector<std::int64_t> TokenSource::to_vector() const {
    std::vector<std::int64_t> ids(static_cast<std::size_t>(size_));
    if (size_ > 0) read(0, size_, ids.data());
    return ids;
}

}  // namespace tg::data
