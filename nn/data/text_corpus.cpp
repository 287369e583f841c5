#include "nn/data/text_corpus.h"

#include "core/error.h"
#include "nn/data/utf8.h"

#include <cstring>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>

namespace tg::data {

namespace fs = std::filesystem;

std::string strip_fortune_separators(const std::string& text, const std::string& replacement) {
    std::string out;
    out.reserve(text.size());
    std::size_t begin = 0;
    while (begin < text.size()) {
        std::size_t end = text.find('\n', begin);
        const bool has_newline = end != std::string::npos;
        if (!has_newline) end = text.size();
        std::string_view line(text.data() + begin, end - begin);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line == "%") {
            out += replacement;  // by default an empty line
        } else {
            out.append(text, begin, end - begin);
            if (has_newline) out += '\n';
        }
        begin = end + 1;
    }
    return out;
}

std::size_t count_invalid_utf8_bytes(const std::string& text) {
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    std::size_t invalid = 0;
    for (std::size_t i = 0; i < n;) {
        const int len = utf8_valid_length(s + i, n - i);
        if (len == 0) {
            ++invalid;  // skip one byte and resynchronise on the next
            ++i;
        } else {
            i += static_cast<std::size_t>(len);
        }
    }
    return invalid;
}

namespace {

bool skipped_name(const fs::path& p) {
    const std::string name = p.filename().string();
    if (name.empty() || name[0] == '.') return true;
    const std::string ext = p.extension().string();
    return ext == ".dat" || ext == ".u8";
}

[[noreturn]] void binary_file(const std::string& origin, const std::string& why) {
    throw ValueError("text corpus: " + origin + ": looks binary, not " + why);
}

}  // namespace

void append_text(ByteSource& source, const std::string& origin, std::string& out, const std::string& separator) {
    // Room for the whole file once its first piece passed the checks (not before: a 2 GB binary file must fail
    // without reserving 2 GB).
    const std::int64_t size = source.known_size();
    bool first = true;
    stream_text(source, origin, [&](std::string_view piece) {
        if (first && size > 0) out.reserve(out.size() + static_cast<std::size_t>(size) + 2);
        first = false;
        out += piece;
    }, separator);
}

void stream_text(ByteSource& source, const std::string& origin, const TextSink& sink, const std::string& separator) {
    const std::int64_t size = source.known_size();  // lets the 1% rule fail before the end of a big file
    std::vector<std::uint8_t> chunk(kTextChunkBytes);
    std::string pending;  // the bytes after the last newline read so far: a line not yet complete
    std::uint64_t offset = 0, invalid = 0;
    const auto check_invalid = [&](std::uint64_t total) {
        if (invalid * 100 > total) {
            binary_file(origin, "UTF-8 text (" + std::to_string(invalid) + " of " + std::to_string(total) +
                                    " bytes are not valid UTF-8; at most 1% is accepted)");
        }
    };
    // Whole lines only: the separator rule works line by line, and no UTF-8 sequence spans a newline (an
    // ASCII byte), so cutting after a newline gives the same text and the same counts as the whole file.
    const auto take_lines = [&](std::size_t end) {
        const std::string lines = pending.substr(0, end);
        invalid += count_invalid_utf8_bytes(lines);
        if (!lines.empty()) sink(strip_fortune_separators(lines, separator));
        pending.erase(0, end);
    };
    while (true) {
        const std::size_t got = source.read(chunk.data(), chunk.size());
        if (got == 0) break;
        const auto* begin = reinterpret_cast<const char*>(chunk.data());
        const void* nul = std::memchr(begin, '\0', got);
        if (nul) {
            binary_file(origin, "text (NUL byte at offset " +
                                    std::to_string(offset + static_cast<std::uint64_t>(static_cast<const char*>(nul) - begin)) + ")");
        }
        offset += got;
        pending.append(begin, got);
        const std::size_t last_newline = pending.rfind('\n');
        if (last_newline != std::string::npos) take_lines(last_newline + 1);
        if (size > 0) check_invalid(static_cast<std::uint64_t>(size));
    }
    take_lines(pending.size());
    if (offset == 0) throw ValueError("text corpus: " + origin + ": the file is empty");
    check_invalid(offset);
}

TextCorpus load_text_corpus(const std::string& path, const std::string& document_separator) {
    TextCorpus corpus;
    corpus.path = path;
    corpus.files = stream_text_corpus(path, [&](std::string_view piece) { corpus.text += piece; }, document_separator);
    return corpus;
}

std::vector<std::string> stream_text_corpus(const std::string& path, const TextSink& sink,
                                            const std::string& document_separator) {
    const std::string separator = document_separator.empty() ? "\n" : document_separator;
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (ec || !fs::exists(status)) {
        throw IOError("text corpus: " + path + ": no such file or folder" +
                      (path == kDefaultCorpusPath ? " (install the Debian packages fortunes-min and fortunes: "
                                                    "bash scripts/setup.sh)"
                                                  : ""));
    }

    std::vector<fs::path> files;
    if (fs::is_directory(status)) {
        for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::skip_permission_denied, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            const fs::path& p = it->path();
            if (skipped_name(p)) {
                if (it->is_directory(ec)) it.disable_recursion_pending();
                continue;
            }
            if (it->is_regular_file(ec)) files.push_back(p);
        }
        if (ec) throw IOError("text corpus: " + path + ": cannot list the folder: " + ec.message());
        std::sort(files.begin(), files.end());
        if (files.empty()) {
            throw ValueError("text corpus: " + path + ": the folder holds no text files (hidden files, .dat and "
                             ".u8 files are skipped)");
        }
    } else if (fs::is_regular_file(status)) {
        files.push_back(path);
    } else {
        throw IOError("text corpus: " + path + ": neither a regular file nor a folder");
    }

    // The joins between files look at the end of the text so far: only its last bytes are kept.
    std::string tail;  // the last (at most separator.size()) bytes handed to the sink
    bool any = false;  // has any text been handed on?
    const auto emit = [&](std::string_view piece) {
        if (piece.empty()) return;
        any = true;
        tail += piece;
        if (tail.size() > separator.size()) tail.erase(0, tail.size() - separator.size());
        sink(piece);
    };
    std::vector<std::string> read;
    for (const fs::path& file : files) {
        if (document_separator.empty()) {
            if (any && tail.back() != '\n') emit("\n");
            if (any) emit("\n");  // a blank line between files, as between fortunes
        } else if (any && !tail.ends_with(document_separator)) {
            // One separator between files (not a second one after a file's own trailing "%" line).
            if (tail.back() != '\n') emit("\n");
            emit(document_separator);
        }
        FileSource source(file.string(), "text corpus");
        stream_text(source, file.string(), emit, separator);
        read.push_back(file.string());
    }
    return read;
}

}  // namespace tg::data
