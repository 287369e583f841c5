#pragma once
// UTF-8, the few facts the text data code needs (RFC 3629):
//
//   code points          bytes   first byte   continuation bytes
//   U+0000  .. U+007F    1       0xxxxxxx
//   U+0080  .. U+07FF    2       110xxxxx     10xxxxxx
//   U+0800  .. U+FFFF    3       1110xxxx     10xxxxxx ×2      (U+D800..U+DFFF, the surrogates, are not allowed)
//   U+10000 .. U+10FFFF  4       11110xxx     10xxxxxx ×3
//
// A sequence is well formed only in its shortest form (no "overlong" encodings such as C0 80 for U+0000).

#include <cstddef>
#include <cstdint>

namespace tg::data {

// How many bytes the sequence starting with `lead` claims (1..4), or 0 if `lead` cannot start one
// (a continuation byte 10xxxxxx, or F8..FF).
inline int utf8_expected_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if ((lead & 0xE0) == 0xC0) return 2;
    if ((lead & 0xF0) == 0xE0) return 3;
    if ((lead & 0xF8) == 0xF0) return 4;
    return 0;
}

// The length of the well-formed sequence at s[0..n), or 0 if the bytes there do not form one (including a
// sequence cut short by the end of the buffer).
inline int utf8_valid_length(const unsigned char* s, std::size_t n) {
    if (n == 0) return 0;
    const int len = utf8_expected_length(s[0]);
    if (len == 0 || static_cast<std::size_t>(len) > n) return 0;
    std::uint32_t cp = len == 1 ? s[0] : len == 2 ? (s[0] & 0x1Fu) : len == 3 ? (s[0] & 0x0Fu) : (s[0] & 0x07u);
    for (int i = 1; i < len; ++i) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    static constexpr std::uint32_t kMinimum[5] = {0, 0, 0x80, 0x800, 0x10000};  // shortest-form rule
    if (cp < kMinimum[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

}  // namespace tg::data
