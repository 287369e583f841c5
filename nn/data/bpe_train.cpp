#include "nn/data/bpe_train.h"

#include "core/error.h"
#include "nn/data/byte_unicode.h"
#include "nn/data/pretokenize.h"

#include <algorithm>
#include <map>
#include <queue>
#include <set>
#include <tuple>
#include <unordered_map>

namespace tg::data {

namespace {

using Pair = std::pair<std::int32_t, std::int32_t>;

std::uint64_t key(Pair p) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(p.first)) << 32) | static_cast<std::uint32_t>(p.second);
}
Pair unkey(std::uint64_t k) { return {static_cast<std::int32_t>(k >> 32), static_cast<std::int32_t>(k & 0xFFFFFFFFu)}; }

struct Word {
    std::vector<std::int32_t> symbols;
    std::int64_t count;
};

// Step 1: distinct pieces and their counts, in sorted order (the order the rest of training relies on).
std::vector<Word> count_words(std::string_view corpus, const std::vector<std::string>& specials,
                              const std::array<std::int32_t, 256>& byte_id) {
    std::unordered_map<std::string_view, std::int64_t> counts;
    std::vector<std::string_view> pieces;
    std::size_t pos = 0;
    while (pos <= corpus.size()) {
        std::size_t next = std::string_view::npos, skip = 0;  // the next special token ends the document
        for (const std::string& s : specials) {
            const std::size_t at = corpus.find(s, pos);
            if (at < next) {
                next = at;
                skip = s.size();
            }
        }
        const std::string_view document = corpus.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos);
        pieces.clear();
        gpt2_pretokenize(document, pieces);
        for (std::string_view p : pieces) ++counts[p];
        if (next == std::string_view::npos) break;
        pos = next + skip;
    }
    std::vector<std::pair<std::string_view, std::int64_t>> sorted(counts.begin(), counts.end());
    std::sort(sorted.begin(), sorted.end());
    std::vector<Word> words;
    words.reserve(sorted.size());
    for (const auto& [text, count] : sorted) {
        Word w{{}, count};
        for (char c : text) w.symbols.push_back(byte_id[static_cast<unsigned char>(c)]);
        words.push_back(std::move(w));
    }
    return words;
}

// The heap's order: the largest count first; among equal counts the smaller pair (a, then b).
struct HeapEntry {
    std::int64_t count;
    std::uint64_t pair;
    bool operator<(const HeapEntry& o) const { return count != o.count ? count < o.count : pair > o.pair; }
};

}  // namespace

BpeModel train_bpe(std::string_view corpus, const BpeTrainOptions& options) {
    const auto n_special = static_cast<std::int64_t>(options.special_tokens.size());
    if (options.vocab_size < 256 + n_special) {
        throw ValueError("train_bpe: vocab_size " + std::to_string(options.vocab_size) + " is below the 256 byte tokens + " +
                         std::to_string(n_special) + " special tokens");
    }
    if (options.vocab_size > (std::int64_t{1} << 31) - 1) {
        throw ValueError("train_bpe: vocab_size " + std::to_string(options.vocab_size) + " is too large");
    }
    std::set<std::string> unique_specials;
    for (const std::string& s : options.special_tokens) {
        if (s.empty() || !unique_specials.insert(s).second) {
            throw ValueError("train_bpe: special token \"" + s + "\" is empty or repeated");
        }
    }

    // The byte tokens, in GPT-2's order.
    std::vector<std::string> tokens;
    std::array<std::int32_t, 256> byte_id{};
    for (unsigned char b : gpt2_byte_order()) {
        byte_id[b] = static_cast<std::int32_t>(tokens.size());
        tokens.emplace_back(1, static_cast<char>(b));
    }
    std::unordered_map<std::string, std::int32_t> id_of;
    for (std::size_t i = 0; i < tokens.size(); ++i) id_of[tokens[i]] = static_cast<std::int32_t>(i);

    std::vector<Word> words = count_words(corpus, options.special_tokens, byte_id);

    // The pair statistics of step 3.
    std::unordered_map<std::uint64_t, std::int64_t> count;
    std::unordered_map<std::uint64_t, std::vector<std::int32_t>> where;
    for (std::size_t w = 0; w < words.size(); ++w) {
        const auto& s = words[w].symbols;
        for (std::size_t i = 0; i + 1 < s.size(); ++i) {
            const std::uint64_t k = key({s[i], s[i + 1]});
            count[k] += words[w].count;
            auto& list = where[k];
            if (list.empty() || list.back() != static_cast<std::int32_t>(w)) list.push_back(static_cast<std::int32_t>(w));
        }
    }
    std::priority_queue<HeapEntry> heap;
    {
        std::vector<HeapEntry> entries;
        for (const auto& [k, c] : count) {
            if (c >= options.min_pair_count) entries.push_back({c, k});
        }
        std::sort(entries.begin(), entries.end());  // a fixed starting order: the heap's layout is then reproducible too
        for (const HeapEntry& e : entries) heap.push(e);
    }

    const std::int64_t target_tokens = options.vocab_size - n_special;
    std::vector<Pair> merges;
    std::vector<std::uint64_t> touched;
    while (static_cast<std::int64_t>(tokens.size()) < target_tokens && !heap.empty()) {
        const HeapEntry top = heap.top();
        heap.pop();
        const std::int64_t current = count[top.pair];
        if (current != top.count) {  // out of date: counts only fall, so re-queue it with the true count
            if (current >= options.min_pair_count) heap.push({current, top.pair});
            continue;
        }
        const Pair best = unkey(top.pair);
        const std::string merged = tokens[static_cast<std::size_t>(best.first)] + tokens[static_cast<std::size_t>(best.second)];
        // Two different merges can spell the same bytes ("ab"+"c" and "a"+"bc"): they share one token.
        auto [it, fresh] = id_of.try_emplace(merged, static_cast<std::int32_t>(tokens.size()));
        if (fresh) tokens.push_back(merged);
        const std::int32_t new_id = it->second;
        merges.push_back(best);

        std::vector<std::int32_t> affected = std::move(where[top.pair]);
        where.erase(top.pair);
        std::sort(affected.begin(), affected.end());
        affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
        touched.clear();
        for (const std::int32_t w : affected) {
            Word& word = words[static_cast<std::size_t>(w)];
            auto& s = word.symbols;
            // Subtract the word's old pairs, merge left to right, add its new pairs.
            for (std::size_t i = 0; i + 1 < s.size(); ++i) count[key({s[i], s[i + 1]})] -= word.count;
            std::size_t out = 0;
            for (std::size_t i = 0; i < s.size(); ++i) {
                if (i + 1 < s.size() && s[i] == best.first && s[i + 1] == best.second) {
                    s[out++] = new_id;
                    ++i;
                } else {
                    s[out++] = s[i];
                }
            }
            s.resize(out);
            for (std::size_t i = 0; i + 1 < s.size(); ++i) {
                const std::uint64_t k = key({s[i], s[i + 1]});
                count[k] += word.count;
                if (s[i] == new_id || s[i + 1] == new_id) {
                    auto& list = where[k];
                    if (list.empty() || list.back() != w) list.push_back(w);
                    touched.push_back(k);
                }
            }
        }
        // Pairs with the new token are new: queue them once, with their final counts.
        std::sort(touched.begin(), touched.end());
        touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
        for (const std::uint64_t k : touched) {
            if (count[k] >= options.min_pair_count) heap.push({count[k], k});
        }
    }

    std::vector<SpecialToken> specials;
    for (const std::string& s : options.special_tokens) {
        specials.push_back({static_cast<std::int64_t>(tokens.size()), s});
        tokens.push_back(s);
    }
    return BpeModel(std::move(tokens), std::move(merges), std::move(specials), "train_bpe");
}

}  // namespace tg::data
