#pragma once
// GPT-2's table from bytes to printable characters (openai/gpt-2, encoder.py, bytes_to_unicode).
//
// A byte-level BPE vocabulary is a set of byte strings, but GPT-2 stores it as JSON text (encoder.json,
// vocab.bpe, Hugging Face's vocab.json/merges.txt/tokenizer.json), where raw bytes such as a space, a newline or
// half of a UTF-8 character would be invisible, ambiguous (vocab.bpe separates the two sides of a merge by a
// space) or not valid text at all. So every byte is written as one printable Unicode character:
//
//   - the 188 bytes that are already printable Latin-1 characters ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for
//     themselves: byte 0x41 is "A", byte 0xE9 is "é";
//   - the other 68 bytes (controls, space, 0x7F..0xA0, 0xAD) take the code points 256, 257, ... in byte
//     order: byte 0x00 is U+0100 "Ā", the space 0x20 is U+0120 "Ġ", the newline 0x0A is U+010A "Ċ".
//
// The token " the" is therefore written "Ġthe". The table is a bijection, so the stored text converts back to
// exactly the bytes. GPT-2 numbers the 256 single-byte tokens in the same order: id i is byte gpt2_byte_order()[i]
// (printable bytes first, then the others), and tapegrad's trained vocabularies keep that order.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace tg::data {

// The printable code point that stands for byte `b`.
std::uint32_t gpt2_byte_to_code_point(unsigned char b);

// The 256 bytes in GPT-2's id order: the printable ones in increasing order, then the rest in increasing order.
const std::array<unsigned char, 256>& gpt2_byte_order();

// Bytes -> their printable text (each byte becomes one character, 1 or 2 bytes of UTF-8).
std::string bytes_to_gpt2_text(std::string_view bytes);

// Printable text -> the bytes. Throws ValueError naming `what` if the text is not valid UTF-8 or holds a
// character outside the table (a vocabulary that is not byte level).
std::string gpt2_text_to_bytes(std::string_view text, const std::string& what);

}  // namespace tg::data
