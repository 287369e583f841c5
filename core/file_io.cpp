#include "core/file_io.h"

#include "core/error.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unistd.h>

namespace tg {

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path, const std::string& tmp,
                       const std::string& step, int error) {
    std::remove(tmp.c_str());  // best effort: it does not exist if fopen failed
    throw IOError(what + ": " + path + ": " + step + ": " + std::strerror(error));
}

}  // namespace

void write_file_atomically(const std::string& path, const void* data, std::size_t size, const std::string& what) {
    // The pid keeps two processes saving to the same path from writing into one temporary file.
    const std::string tmp = path + ".tmp." + std::to_string(static_cast<long>(::getpid()));

    std::FILE* file = std::fopen(tmp.c_str(), "wb");
    if (!file) {
        const int error = errno;  // read before anything else can change it
        fail(what, path, tmp, "cannot create temporary file " + tmp, error);
    }
    if (size > 0 && std::fwrite(data, 1, size, file) != size) {
        const int error = errno;
        std::fclose(file);
        fail(what, path, tmp, "cannot write " + std::to_string(size) + " bytes to " + tmp, error);
    }
    // fflush moves the bytes from the stdio buffer to the kernel, fsync from the kernel to the disk: without
    // both, a crash after the rename could leave the new name pointing at an empty or partial file.
    if (std::fflush(file) != 0 || ::fsync(::fileno(file)) != 0) {
        const int error = errno;
        std::fclose(file);
        fail(what, path, tmp, "cannot flush " + tmp, error);
    }
    if (std::fclose(file) != 0) {
        const int error = errno;
        fail(what, path, tmp, "cannot close " + tmp, error);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const int error = errno;
        fail(what, path, tmp, "cannot rename " + tmp + " to " + path, error);
    }
}

}  // namespace tg
