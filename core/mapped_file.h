#pragma once
// A file mapped read-only into memory (POSIX mmap): its bytes are addressable like an array, but the kernel
// reads a page (4 KiB) from disk only when it is first touched, and may drop it again at any time. A 10 GB
// token file therefore costs 10 GB of address space, not 10 GB of memory.
//
//   auto file = std::make_shared<const tg::MappedFile>("train.bin");
//   const std::byte* bytes = file->data();      // file->size() bytes, valid while `file` lives
//
// Pages that were touched stay mapped (and count in the process's resident set) until the kernel needs the
// memory. A reader that visits a huge file at random, like a sampler of training windows, calls
// note_read(bytes) after each read: once `release_every` bytes have been read since the last release, the
// whole mapping is handed back with madvise(MADV_DONTNEED). For a read-only shared mapping that only drops
// the process's page-table entries; the data stays in the page cache and the next touch maps it again (a
// minor fault, no disk read if the kernel kept it). So the resident set stays near release_every bytes
// however long the run and however large the file.
//
// Opening throws IOError naming the path (missing, unreadable, a folder). An empty file maps to data() ==
// nullptr, size() == 0.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace tg {

class MappedFile {
public:
    static constexpr std::size_t kDefaultReleaseEvery = std::size_t{8} << 20;  // 8 MiB

    explicit MappedFile(std::string path, std::size_t release_every = kDefaultReleaseEvery);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const std::byte* data() const { return data_; }
    std::size_t size() const { return size_; }
    const std::string& path() const { return path_; }

    // Counts `bytes` as read; releases the mapped pages when release_every bytes have been read since the last
    // release. Thread-safe (a concurrent reader just faults its page in again).
    void note_read(std::size_t bytes) const;
    // Drops every mapped page from the resident set now.
    void release_pages() const;

private:
    std::string path_;
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t release_every_;
    mutable std::atomic<std::size_t> read_since_release_{0};
};

}  // namespace tg
