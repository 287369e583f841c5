#include "nn/data/byte_source.h"

#include "core/error.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <sys/stat.h>
#include <zlib.h>

namespace tg::data {

std::size_t MemorySource::read(std::uint8_t* dst, std::size_t n) {
    const std::size_t count = std::min(n, size_ - position_);
    if (count > 0) std::memcpy(dst, data_ + position_, count);
    position_ += count;
    return count;
}

FileSource::FileSource(const std::string& path, const std::string& what) : path_(path), what_(what) {
    file_.reset(std::fopen(path.c_str(), "rb"));
    if (!file_) {
        const int error = errno;
        throw IOError(what + ": cannot open " + path + ": " + std::strerror(error));
    }
    struct stat info {};
    if (::fstat(::fileno(file_.get()), &info) == 0 && S_ISREG(info.st_mode)) size_ = info.st_size;
}

std::size_t FileSource::read(std::uint8_t* dst, std::size_t n) {
    const std::size_t count = std::fread(dst, 1, n, file_.get());
    if (count < n && std::ferror(file_.get())) {
        const int error = errno;
        throw IOError(what_ + ": error while reading " + path_ + ": " + std::strerror(error));
    }
    return count;
}

GzipSource::GzipSource(ByteSource& compressed, std::string origin)
    : compressed_(compressed), origin_(std::move(origin)), zs_(std::make_unique<z_stream>()), input_(1 << 16) {
    // windowBits 15 + 32: zlib detects a gzip or zlib header by itself and checks the trailer (CRC-32, length).
    if (inflateInit2(zs_.get(), 15 + 32) != Z_OK) throw IOError("gunzip: " + origin_ + ": cannot initialise zlib");
}

GzipSource::~GzipSource() { inflateEnd(zs_.get()); }

std::size_t GzipSource::read(std::uint8_t* dst, std::size_t n) {
    std::size_t done = 0;
    while (done < n && !stream_end_) {
        if (zs_->avail_in == 0 && !input_done_) {
            const std::size_t got = compressed_.read(input_.data(), input_.size());
            input_done_ = got == 0;
            zs_->next_in = input_.data();
            zs_->avail_in = static_cast<uInt>(got);
        }
        zs_->next_out = dst + done;
        zs_->avail_out = static_cast<uInt>(std::min<std::size_t>(n - done, std::numeric_limits<uInt>::max()));
        const uInt before = zs_->avail_out;
        const int status = inflate(zs_.get(), Z_NO_FLUSH);
        done += before - zs_->avail_out;
        produced_ += before - zs_->avail_out;
        if (status == Z_STREAM_END) {
            stream_end_ = true;
            // Nothing may follow the stream: neither in the window nor in the rest of the file.
            std::uint8_t extra = 0;
            const std::size_t trailing = zs_->avail_in + (input_done_ ? 0 : compressed_.read(&extra, 1));
            if (trailing != 0) {
                throw IOError("gunzip: " + origin_ + ": unexpected bytes after the end of the gzip stream");
            }
            break;
        }
        if (status == Z_OK) continue;
        // Z_BUF_ERROR: no progress was possible. With input still to come, fetch it; with none left, the
        // stream ended before its end marker: truncated.
        if (status == Z_BUF_ERROR && zs_->avail_in == 0 && !input_done_) continue;
        const std::string reason = status == Z_BUF_ERROR
                                       ? "the gzip stream is truncated (unexpected end of data)"
                                       : std::string("the gzip stream is corrupt (") +
                                             (zs_->msg ? zs_->msg : "zlib error " + std::to_string(status)) + ")";
        throw IOError("gunzip: " + origin_ + ": " + reason + " after " + std::to_string(produced_) +
                      " decompressed bytes");
    }
    return done;
}

std::size_t read_fully(ByteSource& source, std::uint8_t* dst, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
        const std::size_t got = source.read(dst + done, n - done);
        if (got == 0) break;
        done += got;
    }
    return done;
}

}  // namespace tg::data
