// Hugging Face tokenizer.json for byte-level BPE: reading (validated) and writing. The layout is documented in
// nn/data/bpe_files.h.

#include "nn/data/bpe_files.h"

#include "core/error.h"
#include "nn/data/byte_unicode.h"

#include <nlohmann/json.hpp>

namespace tg::data {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

const json& member(const json& object, const char* key, const std::string& where) {
    if (!object.is_object() || !object.contains(key)) throw ValueError(where + ": missing \"" + key + "\"");
    return object.at(key);
}

bool flag(const json& object, const char* key, bool fallback, const std::string& where) {
    if (!object.contains(key) || object.at(key).is_null()) return fallback;
    if (!object.at(key).is_boolean()) throw ValueError(where + ": \"" + key + "\" must be true or false");
    return object.at(key).get<bool>();
}

// object[key] as a string, or fallback when absent or null. nlohmann's value(key, fallback) would throw its own
// type_error for a number or an array there; a file's bad field is our ValueError, which names it.
std::string text_or(const json& object, const char* key, const std::string& fallback, const std::string& where) {
    if (!object.contains(key) || object.at(key).is_null()) return fallback;
    if (!object.at(key).is_string()) {
        throw ValueError(where + ": \"" + key + "\" must be a string, got " + object.at(key).dump().substr(0, 120));
    }
    return object.at(key).get<std::string>();
}

void require_null_or_empty(const json& object, const char* key, const std::string& where, const char* why) {
    if (!object.contains(key)) return;
    const json& v = object.at(key);
    if (v.is_null() || (v.is_string() && v.get<std::string>().empty())) return;
    throw ValueError(where + ": \"" + key + "\" = " + v.dump() + " is not supported (" + why + ")");
}

// The pre-tokenizer must be GPT-2's: ByteLevel with its regex, no prefix space.
void check_byte_level(const json& pre, const std::string& where) {
    if (!pre.is_object() || !pre.contains("type") || pre["type"] != "ByteLevel") {
        throw ValueError(where + ": pre_tokenizer " + pre.dump().substr(0, 200) +
                         " is not supported (tapegrad implements GPT-2's ByteLevel pre-tokenizer only)");
    }
    if (flag(pre, "add_prefix_space", false, where)) {
        throw ValueError(where + ": pre_tokenizer.add_prefix_space = true is not supported (GPT-2 adds no space)");
    }
    if (!flag(pre, "use_regex", true, where)) {
        throw ValueError(where + ": pre_tokenizer.use_regex = false is not supported (GPT-2 splits with its pattern)");
    }
}

}  // namespace

BpeModel parse_hf_tokenizer_json(const std::string& text, const std::string& source) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        throw ValueError(source + ": not JSON: " + e.what());
    }
    if (!j.is_object()) throw ValueError(source + ": a tokenizer.json holds one JSON object");
    if (j.contains("normalizer") && !j["normalizer"].is_null()) {
        throw ValueError(source + ": a normalizer (" + j["normalizer"].dump().substr(0, 200) +
                         ") is not supported (byte-level BPE in GPT-2's style has none)");
    }
    check_byte_level(member(j, "pre_tokenizer", source), source);
    if (j.contains("decoder") && !j["decoder"].is_null() &&
        (!j["decoder"].is_object() || text_or(j["decoder"], "type", "", source + ": decoder") != "ByteLevel")) {
        throw ValueError(source + ": decoder " + j["decoder"].dump().substr(0, 200) + " is not supported (ByteLevel only)");
    }
    const json& model = member(j, "model", source);
    const std::string where = source + ": model";
    if (!model.is_object()) throw ValueError(where + ": must be an object, got " + model.dump().substr(0, 120));
    if (const std::string type = text_or(model, "type", "BPE", where); type != "BPE") {
        throw ValueError(where + ": type " + type + " is not supported (BPE only)");
    }
    require_null_or_empty(model, "dropout", where, "BPE dropout is for training only");
    require_null_or_empty(model, "continuing_subword_prefix", where, "byte-level BPE has no subword prefix");
    require_null_or_empty(model, "end_of_word_suffix", where, "byte-level BPE has no word suffix");
    if (flag(model, "byte_fallback", false, where)) throw ValueError(where + ": byte_fallback = true is not supported");
    if (flag(model, "ignore_merges", false, where)) throw ValueError(where + ": ignore_merges = true is not supported");

    detail::TextFormVocabulary form;
    const json& vocab = member(model, "vocab", where);
    if (!vocab.is_object() || vocab.empty()) throw ValueError(where + ": \"vocab\" must be a non-empty object {token: id}");
    for (const auto& [token, id] : vocab.items()) {
        if (!id.is_number_integer()) throw ValueError(where + ": token \"" + token + "\" has a non-integer id " + id.dump());
        form.vocab.emplace_back(token, id.get<std::int64_t>());
    }
    const json& merges = member(model, "merges", where);
    if (!merges.is_array()) throw ValueError(where + ": \"merges\" must be an array");
    for (std::size_t rank = 0; rank < merges.size(); ++rank) {
        const json& m = merges[rank];
        const std::string at = where + ": merge " + std::to_string(rank);
        if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
            form.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
        } else if (m.is_string()) {
            const std::string s = m.get<std::string>();
            const std::size_t space = s.find(' ');
            if (space == std::string::npos || space == 0 || space + 1 == s.size() || s.find(' ', space + 1) != std::string::npos) {
                throw ValueError(at + ": expected \"a b\", got \"" + s + "\"");
            }
            form.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
        } else {
            throw ValueError(at + ": expected \"a b\" or [\"a\", \"b\"], got " + m.dump());
        }
    }
    if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
        const json& added = j["added_tokens"];
        if (!added.is_array()) throw ValueError(source + ": \"added_tokens\" must be an array");
        for (const json& t : added) {
            const std::string at = source + ": added token " + t.dump().substr(0, 120);
            if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() || !t.contains("content") ||
                !t["content"].is_string()) {
                throw ValueError(at + ": needs an integer \"id\" and a string \"content\"");
            }
            if (!flag(t, "special", false, at)) {
                throw ValueError(at + ": only special added tokens are supported (\"special\": true)");
            }
            form.added.push_back({t["id"].get<std::int64_t>(), t["content"].get<std::string>()});
        }
    }
    return detail::model_from_text_form(form, source);
}

std::string to_hf_tokenizer_json(const BpeModel& model) {
    const ordered_json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                                     {"use_regex", true}};
    ordered_json added = ordered_json::array();
    for (const SpecialToken& s : model.specials()) {
        added.push_back({{"id", s.id}, {"content", s.content}, {"single_word", false}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", false}, {"special", true}});
    }
    ordered_json vocab = ordered_json::object();
    for (std::int64_t id = 0; id < model.vocab_size(); ++id) vocab[bytes_to_gpt2_text(model.token(id))] = id;
    ordered_json merges = ordered_json::array();
    for (const auto& [a, b] : model.merges()) merges.push_back(bytes_to_gpt2_text(model.token(a)) + " " + bytes_to_gpt2_text(model.token(b)));
    ordered_json decoder = byte_level;
    decoder["add_prefix_space"] = true;  // as GPT-2's file has it; the ByteLevel decoder ignores it

    ordered_json j;
    j["version"] = "1.0";
    j["truncation"] = nullptr;
    j["padding"] = nullptr;
    j["added_tokens"] = added;
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = byte_level;
    j["post_processor"] = nullptr;
    j["decoder"] = decoder;
    // "" rather than null for the prefix and suffix, as GPT-2's published tokenizer.json has them: the oldest
    // versions of `tokenizers` read only strings there, every version reads "".
    j["model"] = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", nullptr},
                  {"continuing_subword_prefix", ""},
                  {"end_of_word_suffix", ""},
                  {"fuse_unk", false},
                  {"byte_fallback", false},
                  {"vocab", vocab},
                  {"merges", merges}};
    return j.dump(2) + "\n";
}

}  // namespace tg::data
