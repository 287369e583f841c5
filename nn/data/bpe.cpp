#include "nn/data/bpe.h"

#include "core/error.h"
#include "nn/data/pretokenize.h"

#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <queue>
#include <set>

namespace tg::data {

BpeModel::BpeModel(std::vector<std::string> tokens, std::vector<std::pair<std::int32_t, std::int32_t>> merges,
                   std::vector<SpecialToken> specials, const std::string& source)
    : tokens_(std::move(tokens)), merges_(std::move(merges)), specials_(std::move(specials)) {
    const auto n = static_cast<std::int64_t>(tokens_.size());
    if (n > INT32_MAX) throw ValueError(source + ": " + std::to_string(n) + " tokens are too many");
    std::set<std::int64_t> special_ids;
    std::set<std::string> special_contents;
    for (const SpecialToken& s : specials_) {
        if (s.id < 0 || s.id >= n) {
            throw ValueError(source + ": special token \"" + s.content + "\" has id " + std::to_string(s.id) +
                             ", outside the vocabulary [0, " + std::to_string(n) + ")");
        }
        if (s.content.empty()) throw ValueError(source + ": special token " + std::to_string(s.id) + " is empty");
        if (!special_ids.insert(s.id).second || !special_contents.insert(s.content).second) {
            throw ValueError(source + ": special token \"" + s.content + "\" (id " + std::to_string(s.id) +
                             ") is listed twice");
        }
        if (tokens_[static_cast<std::size_t>(s.id)] != s.content) {
            throw ValueError(source + ": special token id " + std::to_string(s.id) + " is \"" + s.content +
                             "\" but the vocabulary's token " + std::to_string(s.id) + " is \"" +
                             tokens_[static_cast<std::size_t>(s.id)] + "\"");
        }
    }
    for (std::int64_t id = 0; id < n; ++id) {
        const std::string& bytes = tokens_[static_cast<std::size_t>(id)];
        if (special_ids.count(id)) continue;
        if (bytes.empty()) throw ValueError(source + ": token " + std::to_string(id) + " is empty");
        if (!id_of_.emplace(bytes, id).second) {
            throw ValueError(source + ": tokens " + std::to_string(id_of_[bytes]) + " and " + std::to_string(id) +
                             " have the same bytes");
        }
    }
    for (int b = 0; b < 256; ++b) {
        const auto it = id_of_.find(std::string(1, static_cast<char>(b)));
        if (it == id_of_.end()) {
            throw ValueError(source + ": byte " + std::to_string(b) +
                             " has no single-byte token (a byte-level vocabulary has all 256)");
        }
        byte_token_[b] = static_cast<std::int32_t>(it->second);
    }
    merge_of_.reserve(merges_.size());
    for (std::size_t rank = 0; rank < merges_.size(); ++rank) {
        const auto [a, b] = merges_[rank];
        const std::string where = source + ": merge " + std::to_string(rank);
        if (a < 0 || a >= n || b < 0 || b >= n || special_ids.count(a) || special_ids.count(b)) {
            throw ValueError(where + " (" + std::to_string(a) + ", " + std::to_string(b) +
                             ") names a token that is not an ordinary token of the vocabulary");
        }
        const std::string merged = tokens_[static_cast<std::size_t>(a)] + tokens_[static_cast<std::size_t>(b)];
        const auto it = id_of_.find(merged);
        if (it == id_of_.end()) {
            throw ValueError(where + " makes \"" + merged + "\", which is not a token of the vocabulary");
        }
        const MergeTable::Merge m{static_cast<std::int32_t>(rank), static_cast<std::int32_t>(it->second)};
        if (!merge_of_.insert(a, b, m)) {
            throw ValueError(where + " repeats merge " + std::to_string(merge_of_.find(a, b)->rank));
        }
    }
}

bool BpeModel::is_special(std::int64_t id) const {
    return std::any_of(specials_.begin(), specials_.end(), [id](const SpecialToken& s) { return s.id == id; });
}

std::int64_t BpeModel::special_id(std::string_view content) const {
    for (const SpecialToken& s : specials_) {
        if (s.content == content) return s.id;
    }
    return -1;
}

std::int64_t BpeModel::token_id(std::string_view bytes) const {
    const auto it = id_of_.find(std::string(bytes));
    return it == id_of_.end() ? -1 : it->second;
}

// Step 3 of the header's recipe, in O(n log n) for a piece of n bytes: the symbols form a linked list, and a
// min-heap holds every adjacent pair that has a merge, ordered by (rank, position). Popping the lowest entry
// and merging it applies the lowest-rank merge at its leftmost place, which is exactly GPT-2's loop ("merge all
// occurrences of the best pair, left to right, then look again"): a merge creates a token that did not exist
// before, so the pairs it creates have other ranks and cannot interleave with the occurrences being merged.
// Entries made stale by an earlier merge (a side was merged away) are recognised on popping and skipped.
void BpeModel::encode_piece(std::string_view piece, std::vector<std::int32_t>& ids) const {
    const auto n = static_cast<std::int32_t>(piece.size());
    struct Symbol {
        std::int32_t id, prev, next;  // prev/next: positions of the neighbours, -1 at the ends
    };
    struct Candidate {
        std::int32_t rank, left, right, left_id, right_id;
        bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::vector<Symbol> sym(static_cast<std::size_t>(n));
    for (std::int32_t i = 0; i < n; ++i) {
        sym[static_cast<std::size_t>(i)] = {byte_token_[static_cast<unsigned char>(piece[static_cast<std::size_t>(i)])],
                                            i - 1, i + 1 < n ? i + 1 : -1};
    }
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    auto consider = [&](std::int32_t left) {  // queue the pair starting at `left`, if it has a merge
        if (left < 0) return;
        const std::int32_t right = sym[static_cast<std::size_t>(left)].next;
        if (right < 0) return;
        const std::int32_t a = sym[static_cast<std::size_t>(left)].id, b = sym[static_cast<std::size_t>(right)].id;
        if (const MergeTable::Merge* m = merge_of_.find(a, b)) heap.push({m->rank, left, right, a, b});
    };
    for (std::int32_t i = 0; i + 1 < n; ++i) consider(i);
    while (!heap.empty()) {
        const Candidate c = heap.top();
        heap.pop();
        Symbol& l = sym[static_cast<std::size_t>(c.left)];
        if (l.id != c.left_id || l.next != c.right || sym[static_cast<std::size_t>(c.right)].id != c.right_id) {
            continue;  // stale: one side has been merged since this entry was queued
        }
        const Symbol& r = sym[static_cast<std::size_t>(c.right)];
        l.id = merge_of_.find(c.left_id, c.right_id)->id;
        l.next = r.next;
        if (r.next >= 0) sym[static_cast<std::size_t>(r.next)].prev = c.left;
        sym[static_cast<std::size_t>(c.right)].id = -1;  // removed
        consider(l.prev);
        consider(c.left);
    }
    for (std::int32_t i = n > 0 ? 0 : -1; i >= 0; i = sym[static_cast<std::size_t>(i)].next) {
        ids.push_back(sym[static_cast<std::size_t>(i)].id);
    }
}

// The ids of pieces already encoded (English repeats its words: most pieces are found here). Each thread has its
// own, so no locking; a cache only saves work and never changes a result.
struct BpeModel::PieceCache {
    struct Hash {
        using is_transparent = void;  // find() by string_view without building a string
        std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    std::unordered_map<std::string, std::pair<std::uint32_t, std::uint32_t>, Hash, std::equal_to<>> where;  // -> arena
    std::vector<std::int32_t> arena;
    static constexpr std::size_t kMaxPieces = std::size_t{1} << 20;
};

void BpeModel::encode_serial(std::string_view text, std::vector<std::int64_t>& out, PieceCache& cache) const {
    std::vector<std::string_view> pieces;
    gpt2_pretokenize(text, pieces);
    for (std::string_view piece : pieces) {
        if (piece.size() == 1) {
            out.push_back(byte_token_[static_cast<unsigned char>(piece[0])]);
            continue;
        }
        auto it = cache.where.find(piece);
        if (it == cache.where.end()) {
            if (cache.where.size() >= PieceCache::kMaxPieces) {  // bound the memory on huge, varied texts
                cache.where.clear();
                cache.arena.clear();
            }
            const auto begin = static_cast<std::uint32_t>(cache.arena.size());
            encode_piece(piece, cache.arena);
            it = cache.where.emplace(piece, std::pair{begin, static_cast<std::uint32_t>(cache.arena.size()) - begin}).first;
        }
        const auto first = cache.arena.begin() + it->second.first;
        out.insert(out.end(), first, first + it->second.second);
    }
}

namespace {

constexpr std::size_t kChunkBytes = 256 * 1024;

bool ascii_graphic(char c) { return c > ' ' && c < 0x7F; }

}  // namespace

// Just after a newline that has a visible ASCII character on both sides ("x\nB"). No piece of the pattern spans
// such a newline (a letter/number/symbol piece may start with a space, never with a newline), and the lone "\n"
// is one whitespace piece whether or not the text continues after it.
std::size_t next_safe_cut(std::string_view text, std::size_t from) {
    for (std::size_t i = std::max<std::size_t>(from, 2); i < text.size(); ++i) {
        if (text[i - 1] == '\n' && ascii_graphic(text[i - 2]) && ascii_graphic(text[i])) return i;
    }
    return text.size();
}

std::vector<std::int64_t> BpeModel::encode(std::string_view text) const {
    std::vector<std::int64_t> out;
    if (text.size() < 2 * kChunkBytes) {
        out.reserve(text.size() / 3);
        PieceCache cache;
        encode_serial(text, out, cache);
        return out;
    }
    // Chunks cut at fixed places (they depend on the text only, not on the number of threads), encoded in
    // parallel, concatenated in order: the same ids as one serial pass.
    std::vector<std::size_t> cuts{0};
    while (cuts.back() < text.size()) cuts.push_back(next_safe_cut(text, cuts.back() + kChunkBytes));
    std::vector<std::vector<std::int64_t>> parts(cuts.size() - 1);
    tbb::enumerable_thread_specific<PieceCache> caches;
    tbb::parallel_for(std::size_t{0}, parts.size(), [&](std::size_t c) {
        encode_serial(text.substr(cuts[c], cuts[c + 1] - cuts[c]), parts[c], caches.local());
    });
    std::size_t total = 0;
    for (const auto& p : parts) total += p.size();
    out.reserve(total);
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

std::vector<std::int64_t> BpeModel::encode_with_special_tokens(std::string_view text) const {
    std::vector<std::int64_t> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        // The earliest special token in the rest of the text (the longest one if several start there).
        std::size_t best_at = std::string_view::npos;
        const SpecialToken* best = nullptr;
        for (const SpecialToken& s : specials_) {
            const std::size_t at = text.find(s.content, pos);
            if (at < best_at || (at == best_at && at != std::string_view::npos && s.content.size() > best->content.size())) {
                best_at = at;
                best = &s;
            }
        }
        const std::vector<std::int64_t> ordinary = encode(text.substr(pos, best ? best_at - pos : std::string_view::npos));
        out.insert(out.end(), ordinary.begin(), ordinary.end());
        if (!best) break;
        out.push_back(best->id);
        pos = best_at + best->content.size();
    }
    return out;
}

}  // namespace tg::data
