#include "core/file_io.h"

#include "core/error.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unistd.h>

namespace tg {

AtomicFileWriter::AtomicFileWriter(std::string path, std::string what)
    : path_(std::move(path)), what_(std::move(what)),
      // The pid keeps two processes saving to the same path from writing into one temporary file.
      tmp_(path_ + ".tmp." + std::to_string(static_cast<long>(::getpid()))) {
    file_ = std::fopen(tmp_.c_str(), "wb");
    if (!file_) {
        const int error = errno;  // read before anything else can change it
        fail("cannot create temporary file " + tmp_, error);
    }
}

AtomicFileWriter::~AtomicFileWriter() {
    if (file_) std::fclose(file_);
    if (!committed_) std::remove(tmp_.c_str());  // best effort: nothing to do if it was never created
}

void AtomicFileWriter::fail(const std::string& step, int error) {
    if (file_) std::fclose(file_);
    file_ = nullptr;
    std::remove(tmp_.c_str());
    throw IOError(what_ + ": " + path_ + ": " + step + ": " + std::strerror(error));
}

void AtomicFileWriter::write(const void* data, std::size_t size) {
    if (!file_) throw IOError(what_ + ": " + path_ + ": write after commit or failure");
    if (size > 0 && std::fwrite(data, 1, size, file_) != size) {
        const int error = errno;
        fail("cannot write " + std::to_string(size) + " bytes to " + tmp_, error);
    }
    written_ += size;
}

void AtomicFileWriter::rewrite_start(const void* data, std::size_t size) {
    if (!file_) throw IOError(what_ + ": " + path_ + ": write after commit or failure");
    if (size > written_) {
        throw IOError(what_ + ": " + path_ + ": cannot rewrite " + std::to_string(size) + " bytes, only " +
                      std::to_string(written_) + " written");
    }
    if (std::fseek(file_, 0, SEEK_SET) != 0 || std::fwrite(data, 1, size, file_) != size ||
        std::fseek(file_, 0, SEEK_END) != 0) {
        const int error = errno;
        fail("cannot rewrite the first " + std::to_string(size) + " bytes of " + tmp_, error);
    }
}

void AtomicFileWriter::commit() {
    if (!file_) throw IOError(what_ + ": " + path_ + ": commit after commit or failure");
    // fflush moves the bytes from the stdio buffer to the kernel, fsync from the kernel to the disk: without
    // both, a crash after the rename could leave the new name pointing at an empty or partial file.
    if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) {
        const int error = errno;
        fail("cannot flush " + tmp_, error);
    }
    const int closed = std::fclose(file_);
    file_ = nullptr;
    if (closed != 0) {
        const int error = errno;
        fail("cannot close " + tmp_, error);
    }
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
        const int error = errno;
        fail("cannot rename " + tmp_ + " to " + path_, error);
    }
    committed_ = true;
}

void write_file_atomically(const std::string& path, const void* data, std::size_t size, const std::string& what) {
    AtomicFileWriter out(path, what);
    out.write(data, size);
    out.commit();
}

}  // namespace tg
