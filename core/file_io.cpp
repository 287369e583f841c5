#include "core/file_io.h"

#include "core/error.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <signal.h>
#include <sys/stat.h>
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

namespace {

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

// When process `pid` started, in seconds since the epoch, from Linux's /proc: field 22 of /proc/<pid>/stat is
// the start in clock ticks after boot, /proc/stat's "btime" the boot in whole seconds. nullopt where there is
// no /proc (then the sweep trusts the pid alone).
std::optional<double> process_start_time(long pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return std::nullopt;
    const std::size_t name_end = line.rfind(')');  // field 2, the command name, may hold spaces and ')'
    if (name_end == std::string::npos) return std::nullopt;
    std::istringstream fields(line.substr(name_end + 1));  // fields 3, 4, ... follow the name
    std::string field;
    for (int i = 3; i <= 22; ++i)
        if (!(fields >> field)) return std::nullopt;
    const double ticks_after_boot = std::stod(field);
    std::ifstream boot("/proc/stat");
    for (std::string key; boot >> key;) {
        long long btime = 0;
        if (key == "btime" && boot >> btime) {
            return static_cast<double>(btime) + ticks_after_boot / static_cast<double>(::sysconf(_SC_CLK_TCK));
        }
    }
    return std::nullopt;
}

// Whether the writer of a temporary file may still be running. pid_max is 32768 on many machines, so a killed
// writer's pid can soon belong to another process: a process that started after the file was last written
// cannot be its writer (a writer creates its file after it starts). One second of slack covers btime's
// rounding to whole seconds.
bool writer_may_be_alive(long pid, const std::string& file) {
    if (!process_exists(pid)) return false;
    struct ::stat info {};
    const std::optional<double> started = process_start_time(pid);
    if (!started || ::stat(file.c_str(), &info) != 0) return true;
    const double written = static_cast<double>(info.st_mtim.tv_sec) + 1e-9 * static_cast<double>(info.st_mtim.tv_nsec);
    return *started <= written + 1.0;
}

}  // namespace

int remove_stale_temporary_files(const std::string& folder) {
    namespace fs = std::filesystem;
    std::error_code ec;
    int removed = 0;
    for (fs::directory_iterator it(folder.empty() ? "." : folder, ec), end; !ec && it != end; it.increment(ec)) {
        const long pid = temporary_file_pid(it->path().filename().string());
        if (pid <= 0 || pid == static_cast<long>(::getpid()) || writer_may_be_alive(pid, it->path().string())) continue;
        std::error_code type_ec;
        if (!it->is_regular_file(type_ec)) continue;
        if (fs::remove(it->path(), type_ec)) ++removed;
    }
    return removed;
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
    remove_stale_temporary_files(std::filesystem::path(path_).parent_path().string());
}

void write_file_atomically(const std::string& path, const void* data, std::size_t size, const std::string& what) {
    AtomicFileWriter out(path, what);
    out.write(data, size);
    out.commit();
}

}  // namespace tg
