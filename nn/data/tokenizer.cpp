#include "nn/data/tokenizer.h"

#include "core/error.h"
#include "core/file_io.h"
#include "nn/data/bpe.h"
#include "nn/data/bpe_files.h"
#include "nn/data/utf8.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>

namespace tg::data {

namespace {

constexpr const char* kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

std::uint32_t decode_code_point(const unsigned char* s, int len) {
    if (len == 1) return s[0];
    std::uint32_t cp = len == 2 ? (s[0] & 0x1Fu) : len == 3 ? (s[0] & 0x0Fu) : (s[0] & 0x07u);
    for (int i = 1; i < len; ++i) cp = (cp << 6) | (s[i] & 0x3Fu);
    return cp;
}

std::string describe_code_point(std::uint32_t cp) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "U+%04X", static_cast<unsigned>(cp));
    return buf;
}

}  // namespace

Tokenizer Tokenizer::byte_level() { return Tokenizer(); }

Tokenizer Tokenizer::character_level(const std::string& corpus) {
    // The distinct code points, in increasing order: the ids do not depend on where a character first appears.
    std::set<std::uint32_t> seen;
    std::vector<std::pair<std::uint32_t, std::string>> distinct;
    const auto* s = reinterpret_cast<const unsigned char*>(corpus.data());
    for (std::size_t i = 0; i < corpus.size();) {
        const int len = utf8_valid_length(s + i, corpus.size() - i);
        if (len == 0) {
            ++i;  // invalid bytes get no id of their own (they will encode as unknown)
            continue;
        }
        const std::uint32_t cp = decode_code_point(s + i, len);
        if (seen.insert(cp).second) distinct.emplace_back(cp, corpus.substr(i, static_cast<std::size_t>(len)));
        i += static_cast<std::size_t>(len);
    }
    if (distinct.empty()) throw ValueError("Tokenizer::character_level: the corpus holds no valid UTF-8 character");
    std::sort(distinct.begin(), distinct.end());
    Tokenizer tok;
    tok.kind_ = Kind::Char;
    for (auto& [cp, bytes] : distinct) tok.chars_.push_back(bytes);
    tok.build_index();
    return tok;
}

void Tokenizer::build_index() {
    index_.clear();
    for (std::size_t i = 0; i < chars_.size(); ++i) {
        const auto* s = reinterpret_cast<const unsigned char*>(chars_[i].data());
        index_[decode_code_point(s, static_cast<int>(chars_[i].size()))] = static_cast<std::int64_t>(i) + 1;
    }
}

std::string Tokenizer::kind_name() const { return kind_ == Kind::Byte ? "byte" : kind_ == Kind::Char ? "char" : "bpe"; }

std::int64_t Tokenizer::vocab_size() const {
    if (kind_ == Kind::Bpe) return bpe_->vocab_size();
    return kind_ == Kind::Byte ? 256 : static_cast<std::int64_t>(chars_.size()) + 1;
}

bool Tokenizer::operator==(const Tokenizer& other) const {
    if (kind_ != other.kind_ || chars_ != other.chars_) return false;
    return kind_ != Kind::Bpe || bpe_ == other.bpe_ || *bpe_ == *other.bpe_;
}

// ---- BPE ---------------------------------------------------------------------------------------------------------

Tokenizer Tokenizer::bpe(BpeModel model) {
    Tokenizer tok;
    tok.kind_ = Kind::Bpe;
    tok.bpe_ = std::make_shared<const BpeModel>(std::move(model));
    return tok;
}

Tokenizer Tokenizer::load(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        const fs::path dir(path);
        if (fs::exists(dir / "tokenizer.json")) return load((dir / "tokenizer.json").string());
        for (const auto& [vocab, merges] : {std::pair{"encoder.json", "vocab.bpe"}, std::pair{"vocab.json", "merges.txt"}}) {
            if (fs::exists(dir / vocab) && fs::exists(dir / merges)) {
                return bpe(read_gpt2_bpe((dir / vocab).string(), (dir / merges).string()));
            }
        }
        throw IOError("Tokenizer::load: " + path + " holds neither tokenizer.json nor encoder.json + vocab.bpe nor "
                      "vocab.json + merges.txt");
    }
    if (!fs::exists(path, ec)) throw IOError("Tokenizer::load: " + path + ": no such file or folder");
    return bpe(parse_hf_tokenizer_json(read_text_file(path, "Tokenizer::load"), path));
}

namespace {

// The byte tokenizer as a BPE with the same ids: token b is the byte b, no merges.
BpeModel byte_level_as_bpe() {
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) tokens.emplace_back(1, static_cast<char>(b));
    return BpeModel(std::move(tokens), {}, {}, "byte tokenizer");
}

}  // namespace

void Tokenizer::save(const std::string& path) const {
    if (kind_ == Kind::Char) {
        throw ValueError("Tokenizer::save: a character tokenizer has no tokenizer.json form (" + path +
                         "); it is stored in config.json (to_json)");
    }
    const std::string text = to_hf_tokenizer_json(kind_ == Kind::Bpe ? *bpe_ : byte_level_as_bpe());
    write_file_atomically(path, text.data(), text.size(), "Tokenizer::save");
}

std::vector<std::int64_t> Tokenizer::encode_with_special_tokens(const std::string& text) const {
    if (kind_ == Kind::Bpe) return bpe_->encode_with_special_tokens(text);
    return encode(text);
}

std::int64_t Tokenizer::special_token_id(const std::string& content) const {
    return kind_ == Kind::Bpe ? bpe_->special_id(content) : -1;
}

std::vector<std::int64_t> Tokenizer::encode(const std::string& text, std::int64_t* unknown) const {
    std::vector<std::int64_t> ids;
    std::int64_t n_unknown = 0;
    if (kind_ == Kind::Bpe) {
        ids = bpe_->encode(text);
    } else if (kind_ == Kind::Byte) {
        ids.reserve(text.size());
        for (unsigned char c : text) ids.push_back(c);
    } else {
        const auto* s = reinterpret_cast<const unsigned char*>(text.data());
        for (std::size_t i = 0; i < text.size();) {
            const int len = utf8_valid_length(s + i, text.size() - i);
            if (len == 0) {  // an invalid byte: one unknown token
                ids.push_back(kUnknownId);
                ++n_unknown;
                ++i;
                continue;
            }
            const auto it = index_.find(decode_code_point(s + i, len));
            if (it == index_.end()) {
                ids.push_back(kUnknownId);
                ++n_unknown;
            } else {
                ids.push_back(it->second);
            }
            i += static_cast<std::size_t>(len);
        }
    }
    if (unknown) *unknown = n_unknown;
    return ids;
}

std::vector<std::int64_t> Tokenizer::encode_strict(const std::string& text) const {
    if (kind_ != Kind::Char) return encode(text);  // byte and BPE: every text has ids
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    for (std::size_t i = 0; i < text.size();) {
        const int len = utf8_valid_length(s + i, text.size() - i);
        if (len == 0) {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "0x%02X", static_cast<unsigned>(s[i]));
            throw ValueError("Tokenizer::encode_strict: byte " + std::string(buf) + " at offset " + std::to_string(i) +
                             " is not valid UTF-8, and the character vocabulary has no token for it");
        }
        const std::uint32_t cp = decode_code_point(s + i, len);
        if (!index_.count(cp)) {
            throw ValueError("Tokenizer::encode_strict: character '" + text.substr(i, static_cast<std::size_t>(len)) +
                             "' (" + describe_code_point(cp) + ") at byte offset " + std::to_string(i) +
                             " is not in the vocabulary of " + std::to_string(chars_.size()) + " characters");
        }
        i += static_cast<std::size_t>(len);
    }
    return encode(text);
}

std::string Tokenizer::token_bytes(std::int64_t id) const {
    if (id < 0 || id >= vocab_size()) {
        throw IndexError("Tokenizer::decode: token id " + std::to_string(id) + " is outside [0, " +
                         std::to_string(vocab_size()) + ") of the " + kind_name() + " vocabulary");
    }
    if (kind_ == Kind::Byte) return std::string(1, static_cast<char>(static_cast<unsigned char>(id)));
    if (kind_ == Kind::Bpe) return bpe_->token(id);
    if (id == kUnknownId) return kReplacementCharacter;
    return chars_[static_cast<std::size_t>(id - 1)];
}

std::string Tokenizer::decode(const std::vector<std::int64_t>& ids) const {
    std::string text;
    text.reserve(ids.size());
    for (std::int64_t id : ids) text += token_bytes(id);
    return text;
}

std::string Tokenizer::to_json() const {
    nlohmann::json j;
    j["kind"] = kind_name();
    j["vocab_size"] = vocab_size();
    if (kind_ == Kind::Char) j["chars"] = chars_;
    if (kind_ == Kind::Bpe) j["tokenizer"] = nlohmann::json::parse(to_hf_tokenizer_json(*bpe_));
    return j.dump();
}

Tokenizer Tokenizer::from_json(const std::string& text) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw ValueError(std::string("Tokenizer::from_json: not JSON: ") + e.what());
    }
    if (!j.is_object() || !j.contains("kind") || !j["kind"].is_string() || !j.contains("vocab_size") ||
        !j["vocab_size"].is_number_integer()) {
        throw ValueError("Tokenizer::from_json: expected an object with \"kind\" (string) and \"vocab_size\" "
                         "(integer), got " + j.dump());
    }
    const std::string kind = j["kind"].get<std::string>();
    const std::int64_t vocab_size = j["vocab_size"].get<std::int64_t>();
    Tokenizer tok;
    if (kind == "byte") {
        if (vocab_size != 256) {
            throw ValueError("Tokenizer::from_json: a byte tokenizer has vocab_size 256, not " +
                             std::to_string(vocab_size));
        }
        return tok;
    }
    if (kind == "bpe") {
        if (!j.contains("tokenizer") || !j["tokenizer"].is_object()) {
            throw ValueError("Tokenizer::from_json: a bpe tokenizer needs a \"tokenizer\" object (tokenizer.json)");
        }
        tok = bpe(parse_hf_tokenizer_json(j["tokenizer"].dump(), "Tokenizer::from_json"));
        if (tok.vocab_size() != vocab_size) {
            throw ValueError("Tokenizer::from_json: vocab_size " + std::to_string(vocab_size) + " but the bpe "
                             "tokenizer has " + std::to_string(tok.vocab_size()) + " tokens");
        }
        return tok;
    }
    if (kind != "char") throw ValueError("Tokenizer::from_json: unknown kind \"" + kind + "\" (expected byte, char or bpe)");
    if (!j.contains("chars") || !j["chars"].is_array()) {
        throw ValueError("Tokenizer::from_json: a char tokenizer needs a \"chars\" array");
    }
    tok.kind_ = Kind::Char;
    std::set<std::string> unique;
    for (const auto& c : j["chars"]) {
        if (!c.is_string()) throw ValueError("Tokenizer::from_json: \"chars\" holds a non-string: " + c.dump());
        const std::string bytes = c.get<std::string>();
        const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
        if (bytes.empty() || utf8_valid_length(s, bytes.size()) != static_cast<int>(bytes.size())) {
            throw ValueError("Tokenizer::from_json: \"chars\" entry " + c.dump() + " is not exactly one character");
        }
        if (!unique.insert(bytes).second) throw ValueError("Tokenizer::from_json: \"chars\" repeats " + c.dump());
        tok.chars_.push_back(bytes);
    }
    if (tok.vocab_size() != vocab_size) {
        throw ValueError("Tokenizer::from_json: vocab_size " + std::to_string(vocab_size) + " but " +
                         std::to_string(tok.chars_.size()) + " chars + the unknown token make " +
                         std::to_string(tok.vocab_size()));
    }
    tok.build_index();
    return tok;
}

// ---- streaming ---------------------------------------------------------------------------------------------------

std::string TokenStreamDecoder::push(std::int64_t id) {
    const std::string bytes = tokenizer_.token_bytes(id);
    if (tokenizer_.kind() == Tokenizer::Kind::Char) return bytes;  // always whole characters
    std::string out;
    for (char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        if (!pending_.empty() && (c & 0xC0) != 0x80) {
            out += pending_;  // the held-back bytes can never complete: pass them on as they are
            pending_.clear();
        }
        pending_ += ch;
        const auto* s = reinterpret_cast<const unsigned char*>(pending_.data());
        const int expected = utf8_expected_length(s[0]);
        if (expected == 0 || static_cast<int>(pending_.size()) >= expected) {
            out += pending_;  // complete (or hopeless: a stray continuation byte, F8..FF, an overlong form)
            pending_.clear();
        }
    }
    return out;
}

std::string TokenStreamDecoder::finish() {
    std::string out;
    out.swap(pending_);
    return out;
}

}  // namespace tg::data
