#include "nn/data/byte_unicode.h"

#include "core/error.h"
#include "nn/data/utf8.h"

#include <unordered_map>

namespace tg::data {

namespace {

bool printable_latin1(unsigned b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

struct ByteTable {
    std::array<std::uint32_t, 256> code_point{};  // byte -> code point
    std::array<unsigned char, 256> order{};       // id -> byte
    std::unordered_map<std::uint32_t, unsigned char> byte_of;  // code point -> byte

    ByteTable() {
        int id = 0;
        for (unsigned b = 0; b < 256; ++b) {
            if (printable_latin1(b)) {
                code_point[b] = b;
                order[static_cast<std::size_t>(id++)] = static_cast<unsigned char>(b);
            }
        }
        std::uint32_t next = 256;
        for (unsigned b = 0; b < 256; ++b) {
            if (!printable_latin1(b)) {
                code_point[b] = next++;
                order[static_cast<std::size_t>(id++)] = static_cast<unsigned char>(b);
            }
        }
        for (unsigned b = 0; b < 256; ++b) byte_of[code_point[b]] = static_cast<unsigned char>(b);
    }
};

const ByteTable& table() {
    static const ByteTable t;
    return t;
}

void append_utf8(std::string& out, std::uint32_t cp) {  // cp < 0x800 here: 1 or 2 bytes
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

}  // namespace

std::uint32_t gpt2_byte_to_code_point(unsigned char b) { return table().code_point[b]; }

const std::array<unsigned char, 256>& gpt2_byte_order() { return table().order; }

std::string bytes_to_gpt2_text(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (char c : bytes) append_utf8(out, table().code_point[static_cast<unsigned char>(c)]);
    return out;
}

std::string gpt2_text_to_bytes(std::string_view text, const std::string& what) {
    std::string out;
    out.reserve(text.size());
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    for (std::size_t i = 0; i < text.size();) {
        const int len = utf8_valid_length(s + i, text.size() - i);
        if (len == 0) throw ValueError(what + ": token \"" + std::string(text) + "\" is not valid UTF-8");
        std::uint32_t cp = len == 1 ? s[i] : len == 2 ? (s[i] & 0x1Fu) : len == 3 ? (s[i] & 0x0Fu) : (s[i] & 0x07u);
        for (int k = 1; k < len; ++k) cp = (cp << 6) | (s[i + static_cast<std::size_t>(k)] & 0x3Fu);
        const auto it = table().byte_of.find(cp);
        if (it == table().byte_of.end()) {
            throw ValueError(what + ": token \"" + std::string(text) + "\" holds the character \"" +
                             std::string(text.substr(i, static_cast<std::size_t>(len))) +
                             "\", which is not one of GPT-2's 256 byte characters (not a byte-level vocabulary?)");
        }
        out += static_cast<char>(it->second);
        i += static_cast<std::size_t>(len);
    }
    return out;
}

}  // namespace tg::data
