#pragma once
// Loading a text corpus for language-model training: one file, or every text file under a folder.
//
//   tg::data::TextCorpus corpus = tg::data::load_text_corpus("/usr/share/games/fortunes");
//   corpus.text     the whole corpus as one UTF-8 string
//   corpus.files    the files read, in the order their text was joined
//
// Rules, so that the same folder always gives the same text:
//   - A folder is walked recursively; files are taken in sorted path order (byte-wise), so the corpus does
//     not depend on the order the file system lists them. Hidden files and folders (names starting with '.')
//     and the index files of the fortune program (".dat", and ".u8", which are symlinks to the text files) are
//     skipped.
//   - Fortune files separate their entries by a line holding a single "%". Such a line becomes an empty line,
//     so entries read as paragraphs. (A plain text file rarely has a line that is just "%"; if yours does, it
//     becomes an empty line too.)
//   - Texts of consecutive files are separated by an empty line (after adding a final newline to a file that
//     lacks one), as fortunes are.
//   - Each file must be text: no NUL byte, and at most 1% of its bytes in invalid UTF-8 sequences (a few stray
//     Latin-1 bytes are tolerated; the byte tokenizer is lossless for them anyway).
//
// With a document separator (e.g. "<|endoftext|>", a BPE tokenizer's special token), each fortune separator line
// and each boundary between files becomes that separator instead of an empty line, so the documents stay
// distinguishable: "fortune one\n<|endoftext|>fortune two\n".
//
// Errors name the path: IOError for a path that does not exist or cannot be read, ValueError for an empty file,
// a folder without any text file, or a file that looks binary.

#include "nn/data/byte_source.h"

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace tg::data {

// Where Debian's fortunes packages put their files (scripts/setup.sh installs them): the default GPT corpus.
inline constexpr const char* kDefaultCorpusPath = "/usr/share/games/fortunes";

// Receives a corpus's text piece by piece (stream_text_corpus, stream_text).
using TextSink = std::function<void(std::string_view piece)>;

struct TextCorpus {
    std::string path;                // what was asked for (a file or a folder)
    std::vector<std::string> files;  // the files read, in order
    std::string text;                // their joined, separator-stripped text
};

TextCorpus load_text_corpus(const std::string& path, const std::string& document_separator = "");

// The same text as load_text_corpus, handed to `sink` piece by piece (whole lines, about kTextChunkBytes at a
// time, and the separators between files) instead of assembled: memory is one piece, whatever the size of the
// corpus (nn/data/corpus_tokens.h tokenizes a corpus this way). Returns the files read, in order.
std::vector<std::string> stream_text_corpus(const std::string& path, const TextSink& sink,
                                            const std::string& document_separator = "");

// Reads one file's text from `source` in pieces of kTextChunkBytes, checking it as it streams (the rules
// above: a NUL byte fails at once, at its offset; more than 1% invalid UTF-8 as soon as it is certain), and
// appends it, separator lines replaced by `separator`, to `out`. `origin` names the file in errors. Memory: the
// text appended plus one piece, whatever the file's size.
inline constexpr std::size_t kTextChunkBytes = std::size_t{1} << 20;
void append_text(ByteSource& source, const std::string& origin, std::string& out, const std::string& separator = "\n");
// append_text's streaming form: the checked text goes to `sink` piece by piece (whole lines).
void stream_text(ByteSource& source, const std::string& origin, const TextSink& sink,
                 const std::string& separator = "\n");

// One file's text with the fortune separator lines ("%" alone on a line) turned into `replacement` (by default
// "\n": an empty line).
std::string strip_fortune_separators(const std::string& text, const std::string& replacement = "\n");

// Counts bytes that are not part of a well-formed UTF-8 sequence (overlong forms, surrogates and code points
// above U+10FFFF count as invalid too).
std::size_t count_invalid_utf8_bytes(const std::string& text);

}  // namespace tg::data
