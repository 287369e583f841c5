#pragma once
// Internal to tapegrad's JSON readers (not installed: it needs nlohmann/json): an integer field read safely.

#include <cstdint>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

namespace tg::nn {

// v as a T when it is a JSON integer that fits in T; none for a float, a bool, a string, ... or an integer out
// of T's range. nlohmann's get<T>() casts a float unchecked: undefined behaviour out of T's range (found by
// tests/fuzz/fuzz_checkpoint_dir: "seq": 1.1e40), and 1.5 silently made 1. Integers past int64 are JSON's
// unsigned ones, checked as such.
template <class T>
std::optional<T> json_integer(const nlohmann::json& v) {
    if (v.is_number_unsigned()) {
        const std::uint64_t n = v.get<std::uint64_t>();
        if (std::in_range<T>(n)) return static_cast<T>(n);
    } else if (v.is_number_integer()) {
        const std::int64_t n = v.get<std::int64_t>();
        if (std::in_range<T>(n)) return static_cast<T>(n);
    }
    return std::nullopt;
}

}  // namespace tg::nn
