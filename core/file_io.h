#pragma once
// Whole-file writes that never leave a half-written file behind, shared by everything that saves files
// (safetensors checkpoints, graph pictures).
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

#include <cstddef>
#include <string>

namespace tg {

void write_file_atomically(const std::string& path, const void* data, std::size_t size, const std::string& what);

// The sweep write_file_atomically runs after each write: removes "<name>.tmp.<pid>" files of dead processes in
// `folder` (best effort: errors are ignored). Returns how many files it removed.
int remove_stale_temporary_files(const std::string& folder);

}  // namespace tg
