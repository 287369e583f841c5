#pragma once
// Whole-file writes that never leave a half-written file behind, shared by everything that saves files
// (safetensors checkpoints, graph pictures).
//
// write_file_atomically writes to "<path>.tmp.<pid>", flushes it to disk (fflush + fsync) and only then
// renames it over `path`. rename() within one directory is atomic on POSIX: a reader (or a crash) sees
// either the old file whole or the new file whole, never a truncated mix. On any failure the temporary file
// is removed and an IOError "<what>: <path>: <step>: <strerror(errno)>" is thrown.

#include <cstddef>
#include <string>

namespace tg {

void write_file_atomically(const std::string& path, const void* data, std::size_t size, const std::string& what);

}  // namespace tg
