#pragma once
// GPT-2's pre-tokenization: the text is cut into pieces ("words") before BPE, and merges never cross a cut.
//
// The pattern (openai/gpt-2, encoder.py), tried at each position from left to right, first alternative wins:
//
//   's|'t|'re|'ve|'m|'ll|'d        English contractions, as their own pieces ("don't" -> "don", "'t")
//   | ?\p{L}+                      a run of letters, with at most one space in front ("Ġworld")
//   | ?\p{N}+                      a run of digits/numbers, with one optional space in front
//   | ?[^\s\p{L}\p{N}]+            a run of other symbols (punctuation, emoji), one optional space in front
//   |\s+(?!\S)                     whitespace, but not the last space before a word: that one goes with the word
//   |\s+                           whitespace (at the end of the text, or before a non-space)
//
// So "Hello  world!\n" becomes "Hello", " ", " world", "!", "\n": a run of spaces leaves its last space to the
// next word, which makes " world" one token whatever the spacing before it.
//
// The pattern needs Unicode classes (\p{L}, \p{N}, Unicode \s) and a look-ahead. We use PCRE2 (compiled with
// PCRE2_UTF | PCRE2_UCP and JIT-compiled to machine code), which expresses it exactly, as Oniguruma does for
// Hugging Face's tokenizers. Bytes that are not valid UTF-8 cannot be matched by any character class: they
// become pieces of their own (each maximal run of such bytes is one piece), so every byte string splits into
// pieces that concatenate back to it. (Reference encoders only ever see valid text: JavaScript and Python decode
// invalid bytes to U+FFFD first. Our pieces agree with theirs on every valid UTF-8 text.)

#include <string_view>
#include <vector>

namespace tg::data {

// Appends the pieces of `text` to `pieces` (views into `text`, in order, non-empty, concatenating to `text`).
// Thread-safe: the compiled pattern is shared and read-only.
void gpt2_pretokenize(std::string_view text, std::vector<std::string_view>& pieces);

// The pattern as a PCRE2 regular expression (for the docs and the tests).
extern const char* const kGpt2PretokenizePattern;

}  // namespace tg::data
