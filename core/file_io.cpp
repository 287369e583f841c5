#include "core/file_io.h"

#include "core/error.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <signal.h>
#include <unistd.h>

namespace tg {

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path, const std::string& tmp,
                       const std::string& step, int error) {
    std::remove(tmp.c_str());  // best effort: it does not exist if fopen failed
    throw IOError(what + ": " + path + ": " + step + ": " + std::strerror(error));
}

// The pid of a temporary file name "<name>.tmp.<pid>", or -1 if the name does not have that form.
long temporary_file_pid(const std::string& name) {
    const std::size_t dot = name.rfind(".tmp.");
    if (dot == std::string::npos || dot == 0) return -1;
    const std::string digits = name.substr(dot + 5);
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
    return std::stol(digits);
}

// kill(pid, 0) sends no signal; it fails with ESRCH exactly when no process has that pid. EPERM means a
// process of another user holds it: alive.
bool process_exists(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH); }

}  // namespace

int remove_stale_temporary_files(const std::string& folder) {
    namespace fs = std::filesystem;
    std::error_code ec;
    int removed = 0;
    for (fs::directory_iterator it(folder.empty() ? "." : folder, ec), end; !ec && it != end; it.increment(ec)) {
        const long pid = temporary_file_pid(it->path().filename().string());
        if (pid <= 0 || pid == static_cast<long>(::getpid()) || process_exists(pid)) continue;
        std::error_code type_ec;
        if (!it->is_regular_file(type_ec)) continue;
        if (fs::remove(it->path(), type_ec)) ++removed;
    }
    return removed;
}

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
    remove_stale_temporary_files(std::filesystem::path(path).parent_path().string());
}

}  // namespace tg
