#pragma once
// The lookup at the heart of BPE encoding: "do tokens a, b merge, and with which rank into which token?", asked
// for every adjacent pair of every new piece. A std::unordered_map made this lookup a third of the encoding
// time (a pointer chase per lookup); this table keeps each entry in one 16-byte slot of a flat array and probes
// linearly from a multiplicative (Fibonacci) hash, so a lookup is usually one cache line.

#include <cstdint>
#include <vector>

namespace tg::data {

class MergeTable {
public:
    struct Merge {
        std::int32_t rank;
        std::int32_t id;  // the merged token
    };

    static std::uint64_t key(std::int32_t a, std::int32_t b) {
        return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
    }

    // Sizes the table for n entries (at most half full). Call before the inserts.
    void reserve(std::size_t n) {
        int bits = 4;
        while ((std::size_t{1} << bits) < 2 * n) ++bits;
        shift_ = 64 - bits;
        slots_.assign(std::size_t{1} << bits, Slot{kEmpty, {0, 0}});
    }

    // False (and nothing changes) if the pair is already present.
    bool insert(std::int32_t a, std::int32_t b, Merge m) {
        const std::uint64_t k = key(a, b);
        for (std::size_t i = index(k);; i = (i + 1) & (slots_.size() - 1)) {
            if (slots_[i].key == k) return false;
            if (slots_[i].key == kEmpty) {
                slots_[i] = {k, m};
                return true;
            }
        }
    }

    const Merge* find(std::int32_t a, std::int32_t b) const {
        const std::uint64_t k = key(a, b);
        for (std::size_t i = index(k);; i = (i + 1) & (slots_.size() - 1)) {
            if (slots_[i].key == k) return &slots_[i].merge;
            if (slots_[i].key == kEmpty) return nullptr;
        }
    }

private:
    struct Slot {
        std::uint64_t key;
        Merge merge;
    };
    static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};  // no pair of ids >= 0 has this key
    std::size_t index(std::uint64_t k) const { return static_cast<std::size_t>((k * 0x9E3779B97F4A7C15ull) >> shift_); }

    std::vector<Slot> slots_ = std::vector<Slot>(16, Slot{kEmpty, {0, 0}});
    int shift_ = 60;
};

}  // namespace tg::data
