#pragma once
// Reading outside bytes in bounded pieces: a plain file, a buffer in memory, or a gzip stream inflated on
// demand. The loaders of data sets read a header through one of these, decide from it how much they need,
// and then read only that much; so a file that lies about its size (or a small .gz that inflates to
// gigabytes) costs at most what the header promised, never what the file could produce.

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

struct z_stream_s;  // zlib's z_stream; zlib.h stays out of the installed headers

namespace tg::data {

class ByteSource {
public:
    virtual ~ByteSource() = default;
    // Reads up to n bytes into dst; fewer only at the end of the data. Throws IOError on a read error.
    virtual std::size_t read(std::uint8_t* dst, std::size_t n) = 0;
    // The total size if known up front (a file, a buffer), else -1 (a compressed stream).
    virtual std::int64_t known_size() const { return -1; }
};

// A buffer in memory (not owned).
class MemorySource final : public ByteSource {
public:
    MemorySource(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    std::size_t read(std::uint8_t* dst, std::size_t n) override;
    std::int64_t known_size() const override { return static_cast<std::int64_t>(size_); }

private:
    const std::uint8_t* data_;
    std::size_t size_, position_ = 0;
};

// A regular file. Throws IOError "<what>: cannot open <path>: <reason>" when it cannot be opened.
class FileSource final : public ByteSource {
public:
    FileSource(const std::string& path, const std::string& what);
    std::size_t read(std::uint8_t* dst, std::size_t n) override;
    std::int64_t known_size() const override { return size_; }

private:
    struct Closer {
        void operator()(std::FILE* f) const { std::fclose(f); }
    };
    std::unique_ptr<std::FILE, Closer> file_;
    std::string path_, what_;
    std::int64_t size_ = -1;
};

// Inflates the gzip (or zlib) stream read from `compressed`, as much as each read() asks for. Checks the
// trailer (CRC-32 and length) at the end of the stream and refuses bytes after it. Errors are IOErrors
// "gunzip: <origin>: ..." saying whether the stream is truncated or corrupt.
class GzipSource final : public ByteSource {
public:
    GzipSource(ByteSource& compressed, std::string origin);
    ~GzipSource() override;
    GzipSource(const GzipSource&) = delete;
    GzipSource& operator=(const GzipSource&) = delete;
    std::size_t read(std::uint8_t* dst, std::size_t n) override;

private:
    ByteSource& compressed_;
    std::string origin_;
    std::unique_ptr<z_stream_s> zs_;
    std::vector<std::uint8_t> input_;  // a window of compressed bytes
    bool input_done_ = false, stream_end_ = false;
    std::uint64_t produced_ = 0;
};

// Reads exactly n bytes or fewer at the end: the sum of read() calls until n or the end.
std::size_t read_fully(ByteSource& source, std::uint8_t* dst, std::size_t n);

}  // namespace tg::data
