#include "core/mapped_file.h"

#include "core/error.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tg {

MappedFile::MappedFile(std::string path, std::size_t release_every)
    : path_(std::move(path)), release_every_(release_every) {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int error = errno;
        throw IOError("MappedFile: " + path_ + ": cannot open: " + std::strerror(error));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        const int error = errno;
        ::close(fd);
        throw IOError("MappedFile: " + path_ + ": not a regular file" +
                      (error ? std::string(": ") + std::strerror(error) : std::string()));
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            const int error = errno;
            ::close(fd);
            throw IOError("MappedFile: " + path_ + ": cannot map " + std::to_string(size_) + " bytes: " +
                          std::strerror(error));
        }
        data_ = static_cast<const std::byte*>(p);
        // Readers jump around the file: read ahead nothing beyond the page asked for.
        ::madvise(p, size_, MADV_RANDOM);
    }
    ::close(fd);  // the mapping keeps its own reference to the file
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

void MappedFile::note_read(std::size_t bytes) const {
    if (release_every_ == 0) return;
    const std::size_t before = read_since_release_.fetch_add(bytes, std::memory_order_relaxed);
    if (before + bytes >= release_every_) {
        read_since_release_.store(0, std::memory_order_relaxed);
        release_pages();
    }
}

void MappedFile::release_pages() const {
    if (data_) ::madvise(const_cast<std::byte*>(data_), size_, MADV_DONTNEED);
}

}  // namespace tg
