#include "nn/data/pretokenize.h"

#include "core/error.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>
#include <string>

namespace tg::data {

const char* const kGpt2PretokenizePattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

// The compiled pattern, built once. PCRE2_UCP makes \s mean Unicode white space (not only ASCII);
// PCRE2_MATCH_INVALID_UTF lets the subject hold invalid UTF-8 (such bytes match nothing, see the header), and
// it also spares the whole-subject UTF-8 check PCRE2 would otherwise do on every call.
struct CompiledPattern {
    pcre2_code* code = nullptr;
    bool jit = false;

    CompiledPattern() {
        int error = 0;
        PCRE2_SIZE offset = 0;
        code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kGpt2PretokenizePattern), PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
        if (!code) {
            PCRE2_UCHAR message[256];
            pcre2_get_error_message(error, message, sizeof(message));
            throw Error(std::string("gpt2_pretokenize: PCRE2 cannot compile the pattern: ") +
                        reinterpret_cast<const char*>(message));
        }
        // JIT compilation makes matching several times faster; if the platform has no JIT, the interpreter
        // gives the same matches.
        jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    }
    ~CompiledPattern() { pcre2_code_free(code); }
};

const CompiledPattern& pattern() {
    static const CompiledPattern compiled;
    return compiled;
}

struct MatchDataDeleter {
    void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

}  // namespace

void gpt2_pretokenize(std::string_view text, std::vector<std::string_view>& pieces) {
    const pcre2_code* code = pattern().code;
    // pcre2_jit_match is pcre2_match without its per-call option checks: the same matches, less overhead
    // for our many short matches.
    const auto match_at = pattern().jit ? pcre2_jit_match : pcre2_match;
    std::unique_ptr<pcre2_match_data, MatchDataDeleter> match(pcre2_match_data_create_from_pattern(code, nullptr));
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    std::size_t pos = 0;
    while (pos < text.size()) {
        const int rc = match_at(code, subject, text.size(), pos, 0, match.get(), nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) {  // only invalid bytes are left
            pieces.push_back(text.substr(pos));
            break;
        }
        if (rc < 0) {
            PCRE2_UCHAR message[256];
            pcre2_get_error_message(rc, message, sizeof(message));
            throw Error("gpt2_pretokenize: PCRE2 match failed at byte " + std::to_string(pos) + ": " +
                        reinterpret_cast<const char*>(message));
        }
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
        const std::size_t start = ovector[0], end = ovector[1];
        if (start > pos) pieces.push_back(text.substr(pos, start - pos));  // invalid bytes the pattern skipped
        pieces.push_back(text.substr(start, end - start));                  // never empty: every branch takes >= 1
        pos = end;
    }
}

}  // namespace tg::data
