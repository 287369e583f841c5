#pragma once
// Whole-file writes that never leave a half-written file behind, shared by everything that saves files
// (safetensors checkpoints, graph pictures, token shards).
//
// write_file_atomically writes to "<path>.tmp.<pid>", flushes it to disk (fflush + fsync) and only then
// renames it over `path`. rename() within one directory is atomic on POSIX: a reader (or a crash) sees
// either the old file whole or the new file whole, never a truncated mix. On any failure the temporary file
// is removed and an IOError "<what>: <path>: <step>: <strerror(errno)>" is thrown.
//
// A writer killed between creating and renaming its temporary file (kill -9, a power cut) leaves
// "<name>.tmp.<pid>" behind; the real file is untouched. After each successful write, the folder is swept of
// such leftovers: a file "<name>.tmp.<pid>" whose process <pid> no longer exists is removed (a live process,
// including this one, may still be writing its file, so those are kept).
//
// AtomicFileWriter is the same protocol for a file written piece by piece (a file too large to assemble in
// memory first): write() appends to the temporary file, commit() flushes, fsyncs and renames it. A writer
// destroyed without commit() (an exception on the way) removes its temporary file: `path` is untouched.
//
//   tg::AtomicFileWriter out("train.bin", "token shard");
//   out.write(header, 64);
//   for (...) out.write(chunk.data(), chunk.size());
//   out.commit();

#include <cstddef>
#include <cstdio>
#include <string>

namespace tg {

void write_file_atomically(const std::string& path, const void* data, std::size_t size, const std::string& what);

// The sweep write_file_atomically runs after each write: removes "<name>.tmp.<pid>" files of dead processes in
// `folder` (best effort: errors are ignored). A pid held by a process that started after the file was last
// written counts as dead: the writer's pid has been reused. Returns how many files it removed.
int remove_stale_temporary_files(const std::string& folder);

class AtomicFileWriter {
public:
    // Creates the temporary file; throws IOError if it cannot.
    AtomicFileWriter(std::string path, std::string what);
    ~AtomicFileWriter();  // removes the temporary file unless committed
    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

    void write(const void* data, std::size_t size);
    // Overwrites the first `size` bytes written so far (a header whose fields are known only at the end), then
    // continues appending. Throws IOError if fewer than `size` bytes were written.
    void rewrite_start(const void* data, std::size_t size);
    void commit();  // flush, fsync, rename over `path`
    std::size_t bytes_written() const { return written_; }

private:
    [[noreturn]] void fail(const std::string& step, int error);
    std::string path_, what_, tmp_;
    std::FILE* file_ = nullptr;
    std::size_t written_ = 0;
    bool committed_ = false;
};

}  // namespace tg
