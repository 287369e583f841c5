#include "nn/data/bpe_files.h"

#include "core/error.h"
#include "nn/data/byte_unicode.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <set>

namespace tg::data {

std::string read_text_file(const std::string& path, const std::string& what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IOError(what + ": cannot open " + path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw IOError(what + ": error while reading " + path);
    return text;
}

namespace detail {

BpeModel model_from_text_form(const TextFormVocabulary& form, const std::string& source) {
    // Ids must be exactly 0..N-1: find N, then fill every slot once. N cannot exceed the number of entries
    // (vocabulary + added tokens), so an id at or past that count is a gap, reported before anything is
    // allocated for it: a file naming id 2^31 must not cost 64 GB of empty strings to reject.
    const auto entries = static_cast<std::int64_t>(form.vocab.size() + form.added.size());
    const auto check_id = [&](std::int64_t id, const std::string& what) {
        if (id < 0) throw ValueError(source + ": " + what + " has a negative id " + std::to_string(id));
        if (id >= entries || id > std::numeric_limits<std::int32_t>::max() - 1) {
            throw ValueError(source + ": " + what + " has id " + std::to_string(id) + ", but the file has only " +
                             std::to_string(entries) + " tokens (ids must be 0.." + std::to_string(entries - 1) +
                             " without gaps)");
        }
    };
    std::int64_t n = 0;
    for (const auto& [text, id] : form.vocab) {
        check_id(id, "token \"" + text + "\"");
        n = std::max(n, id + 1);
    }
    for (const SpecialToken& s : form.added) {
        check_id(s.id, "added token \"" + s.content + "\"");
        n = std::max(n, s.id + 1);
    }
    std::vector<std::string> tokens(static_cast<std::size_t>(n));
    std::vector<char> filled(static_cast<std::size_t>(n), 0);
    std::map<std::string, std::int64_t> id_of_text;
    for (const auto& [text, id] : form.vocab) {
        if (filled[static_cast<std::size_t>(id)]) {
            throw ValueError(source + ": id " + std::to_string(id) + " is given to two tokens (\"" +
                             tokens[static_cast<std::size_t>(id)] + "\" and \"" + text + "\")");
        }
        tokens[static_cast<std::size_t>(id)] = gpt2_text_to_bytes(text, source);
        filled[static_cast<std::size_t>(id)] = 1;
        id_of_text[text] = id;
    }
    for (const SpecialToken& s : form.added) {
        auto& slot = tokens[static_cast<std::size_t>(s.id)];
        if (filled[static_cast<std::size_t>(s.id)] && slot != s.content) {
            throw ValueError(source + ": added token \"" + s.content + "\" has id " + std::to_string(s.id) +
                             ", which the vocabulary gives to \"" + bytes_to_gpt2_text(slot) + "\"");
        }
        slot = s.content;
        filled[static_cast<std::size_t>(s.id)] = 1;
    }
    for (std::int64_t id = 0; id < n; ++id) {
        if (!filled[static_cast<std::size_t>(id)]) {
            throw ValueError(source + ": no token has id " + std::to_string(id) + " (ids must be 0.." +
                             std::to_string(n - 1) + " without gaps)");
        }
    }
    std::vector<std::pair<std::int32_t, std::int32_t>> merges;
    merges.reserve(form.merges.size());
    for (std::size_t rank = 0; rank < form.merges.size(); ++rank) {
        const auto& [a, b] = form.merges[rank];
        const auto ia = id_of_text.find(a), ib = id_of_text.find(b);
        if (ia == id_of_text.end() || ib == id_of_text.end()) {
            throw ValueError(source + ": merge " + std::to_string(rank) + " \"" + a + " " + b + "\" names the token \"" +
                             (ia == id_of_text.end() ? a : b) + "\", which is not in the vocabulary");
        }
        merges.emplace_back(static_cast<std::int32_t>(ia->second), static_cast<std::int32_t>(ib->second));
    }
    return BpeModel(std::move(tokens), std::move(merges), form.added, source);
}

}  // namespace detail

namespace {

// "a b" -> (a, b). Tokens in GPT-2 characters never hold a space (the space byte is "Ġ"), so one space separates.
std::pair<std::string, std::string> split_merge_line(const std::string& line, const std::string& where) {
    const std::size_t space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size() || line.find(' ', space + 1) != std::string::npos) {
        throw ValueError(where + ": expected two tokens separated by one space, got \"" + line + "\"");
    }
    return {line.substr(0, space), line.substr(space + 1)};
}

}  // namespace

BpeModel parse_gpt2_bpe(const std::string& vocab_json, const std::string& merges_text, const std::string& source) {
    nlohmann::json vocab;
    try {
        vocab = nlohmann::json::parse(vocab_json);
    } catch (const nlohmann::json::exception& e) {
        throw ValueError(source + ": the vocabulary is not JSON: " + e.what());
    }
    if (!vocab.is_object() || vocab.empty()) {
        throw ValueError(source + ": the vocabulary must be a non-empty JSON object {token: id}");
    }
    detail::TextFormVocabulary form;
    for (const auto& [text, id] : vocab.items()) {
        if (!id.is_number_integer()) throw ValueError(source + ": token \"" + text + "\" has a non-integer id " + id.dump());
        form.vocab.emplace_back(text, id.get<std::int64_t>());
        if (text == "<|endoftext|>") form.added.push_back({id.get<std::int64_t>(), text});
    }
    std::size_t begin = 0, line_number = 0;
    while (begin < merges_text.size()) {
        std::size_t end = merges_text.find('\n', begin);
        if (end == std::string::npos) end = merges_text.size();
        std::string line = merges_text.substr(begin, end - begin);
        begin = end + 1;
        ++line_number;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || (line_number == 1 && line.rfind("#version", 0) == 0)) continue;
        form.merges.push_back(split_merge_line(line, source + ": merges line " + std::to_string(line_number)));
    }
    return detail::model_from_text_form(form, source);
}

BpeModel read_gpt2_bpe(const std::string& vocab_json_path, const std::string& merges_path) {
    return parse_gpt2_bpe(read_text_file(vocab_json_path, "BPE vocabulary"), read_text_file(merges_path, "BPE merges"),
                          vocab_json_path + " + " + merges_path);
}

}  // namespace tg::data
