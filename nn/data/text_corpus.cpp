#include "nn/data/text_corpus.h"

#include "core/error.h"
#include "nn/data/utf8.h"

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

std::string read_whole_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IOError("text corpus: " + path.string() + ": cannot open the file for reading");
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (in.bad()) throw IOError("text corpus: " + path.string() + ": read error");
    return buffer.str();
}

// Throws ValueError naming the file if it is empty or does not look like text.
void check_text(const fs::path& path, const std::string& bytes) {
    if (bytes.empty()) throw ValueError("text corpus: " + path.string() + ": the file is empty");
    const std::size_t nul = bytes.find('\0');
    if (nul != std::string::npos) {
        throw ValueError("text corpus: " + path.string() + ": looks binary, not text (NUL byte at offset " +
                         std::to_string(nul) + ")");
    }
    const std::size_t invalid = count_invalid_utf8_bytes(bytes);
    if (invalid * 100 > bytes.size()) {
        throw ValueError("text corpus: " + path.string() + ": looks binary, not UTF-8 text (" +
                         std::to_string(invalid) + " of " + std::to_string(bytes.size()) +
                         " bytes are not valid UTF-8; at most 1% is accepted)");
    }
}

}  // namespace

TextCorpus load_text_corpus(const std::string& path, const std::string& document_separator) {
    const std::string separator = document_separator.empty() ? "\n" : document_separator;
    TextCorpus corpus;
    corpus.path = path;
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

    for (const fs::path& file : files) {
        const std::string bytes = read_whole_file(file);
        check_text(file, bytes);
        if (document_separator.empty()) {
            if (!corpus.text.empty() && corpus.text.back() != '\n') corpus.text += '\n';
            if (!corpus.text.empty()) corpus.text += '\n';  // a blank line between files, as between fortunes
        } else if (!corpus.text.empty() && !corpus.text.ends_with(document_separator)) {
            // One separator between files (not a second one after a file's own trailing "%" line).
            if (corpus.text.back() != '\n') corpus.text += '\n';
            corpus.text += document_separator;
        }
        corpus.text += strip_fortune_separators(bytes, separator);
        corpus.files.push_back(file.string());
    }
    return corpus;
}

}  // namespace tg::data
