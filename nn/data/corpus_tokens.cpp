#include "nn/data/corpus_tokens.h"

#include "nn/data/bpe.h"
#include "nn/data/text_corpus.h"

#include <algorithm>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <utility>

namespace tg::data {

namespace {

// The first place at or after `from` where `text` may be cut for this tokenizer (header comment), or its end.
std::size_t next_cut(std::string_view text, std::size_t from, Tokenizer::Kind kind) {
    if (from >= text.size()) return text.size();
    switch (kind) {
        case Tokenizer::Kind::Byte: return from;
        case Tokenizer::Kind::Char:
            for (std::size_t i = from; i < text.size(); ++i) {
                if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) return i;  // not a continuation byte
            }
            return text.size();
        case Tokenizer::Kind::Bpe: return next_safe_cut(text, from);
    }
    return text.size();
}

// Takes text in slices of any size and encodes it in pieces of at least piece_bytes that end at a cut; the
// text after the last cut waits for more (or for finish()).
class PieceEncoder {
public:
    PieceEncoder(const Tokenizer& tokenizer, const TokenSink& sink, std::size_t piece_bytes, CorpusTokens& counts)
        : tokenizer_(tokenizer), sink_(sink), piece_bytes_(std::max<std::size_t>(piece_bytes, 1)), counts_(counts) {}

    void feed(std::string_view text) {
        counts_.bytes += static_cast<std::int64_t>(text.size());
        pending_ += text;
        std::size_t begin = 0;  // pending_[0, begin) is encoded already
        while (pending_.size() - begin > piece_bytes_) {
            // Every place before scanned_ was looked at, with the bytes on both sides present: no cut there.
            const std::size_t cut = next_cut(pending_, std::max(begin + piece_bytes_, scanned_), tokenizer_.kind());
            if (cut >= pending_.size()) {
                scanned_ = pending_.size();
                break;
            }
            encode(begin, cut);
            begin = cut;
        }
        pending_.erase(0, begin);
        scanned_ -= std::min(scanned_, begin);
    }

    void finish() {
        encode(0, pending_.size());
        pending_.clear();
        scanned_ = 0;
    }

private:
    void encode(std::size_t begin, std::size_t end) {
        if (begin == end) return;
        std::int64_t unknown = 0;
        const std::vector<std::int64_t> ids = tokenizer_.encode(pending_.substr(begin, end - begin), &unknown);
        counts_.unknown += unknown;
        counts_.tokens += static_cast<std::int64_t>(ids.size());
        if (!ids.empty()) sink_(ids);
    }

    const Tokenizer& tokenizer_;
    const TokenSink& sink_;
    std::size_t piece_bytes_;
    CorpusTokens& counts_;
    std::string pending_;       // text not yet encoded
    std::size_t scanned_ = 0;   // pending_ holds no cut before this
};

// Narrow ids for a vocabulary of `vocab_size`: uint16 up to 65,536 ids, uint32 above. `fill` runs the encoding
// with a sink that appends to the vector; about_bytes (an estimate of the text's size) reserves room first.
TokenSource encode_narrow(const Tokenizer& tokenizer, std::int64_t about_bytes, std::string origin,
                          const std::function<void(const TokenSink&)>& fill) {
    // Byte and char: at most one token per byte; BPE: about one per 3 bytes, the vector grows if it must.
    const auto expected = static_cast<std::size_t>(tokenizer.kind() == Tokenizer::Kind::Bpe ? about_bytes / 3 : about_bytes);
    const auto run = [&]<class Id>(std::vector<Id> ids) {
        fill([&](std::span<const std::int64_t> piece) {
            // Room for all once the first piece passed the corpus's checks (not before: a 2 GB binary file must
            // fail without reserving 4 GB).
            if (ids.empty()) ids.reserve(std::max(expected, piece.size()));
            ids.insert(ids.end(), piece.begin(), piece.end());  // 0 <= id < vocab_size <= 1 + the largest Id
        });
        return TokenSource(std::move(ids), tokenizer.vocab_size(), std::move(origin));
    };
    if (tokenizer.vocab_size() <= 65536) return run(std::vector<std::uint16_t>{});
    return run(std::vector<std::uint32_t>{});
}

// The bytes of the files under `path` (an upper bound of its text's size: skipped files count too), or 0.
std::int64_t bytes_on_disk(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) return static_cast<std::int64_t>(fs::file_size(path, ec));
    std::uintmax_t total = 0;
    for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec)) total += it->file_size(ec);
    }
    return static_cast<std::int64_t>(total);
}

}  // namespace

CorpusTokens encode_text_corpus(const std::string& path, const Tokenizer& tokenizer, const TokenSink& sink,
                                std::size_t piece_bytes) {
    CorpusTokens counts;
    PieceEncoder encoder(tokenizer, sink, piece_bytes, counts);
    counts.files = stream_text_corpus(path, [&](std::string_view text) { encoder.feed(text); });
    encoder.finish();
    return counts;
}

TokenSource encode_text_corpus(const std::string& path, const Tokenizer& tokenizer, CorpusTokens* counts,
                               std::size_t piece_bytes) {
    CorpusTokens seen;
    TokenSource ids = encode_narrow(tokenizer, bytes_on_disk(path), path, [&](const TokenSink& sink) {
        seen = encode_text_corpus(path, tokenizer, sink, piece_bytes);
    });
    if (counts) *counts = std::move(seen);
    return ids;
}

TokenSource encode_corpus(const std::string& text, const Tokenizer& tokenizer, std::string origin,
                          std::int64_t* unknown, std::size_t piece_bytes) {
    CorpusTokens counts;
    TokenSource ids = encode_narrow(tokenizer, static_cast<std::int64_t>(text.size()), std::move(origin),
                                    [&](const TokenSink& sink) {
        PieceEncoder encoder(tokenizer, sink, piece_bytes, counts);
        // Fed a slice at a time, so the encoder's copy of the text not yet encoded stays small.
        for (std::size_t begin = 0; begin < text.size(); begin += kTextChunkBytes) {
            encoder.feed(std::string_view(text).substr(begin, kTextChunkBytes));
        }
        encoder.finish();
    });
    if (unknown) *unknown = counts.unknown;
    return ids;
}

}  // namespace tg::data
