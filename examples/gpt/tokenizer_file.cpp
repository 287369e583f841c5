#include "tokenizer_file.h"

#include "core/file_io.h"

#include <tapegrad/tapegrad.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace tg_gpt {

void save_tokenizer_file(const std::string& path, const tg::data::Tokenizer& tokenizer) {
    // BPE: Hugging Face's tokenizer.json, which Python's `tokenizers` loads too. Byte and character level have a
    // short form of their own ({"kind": "byte", ...}), which keeps their kind (a byte tokenizer saved as
    // Hugging Face BPE would load back as a BPE of 256 tokens).
    if (tokenizer.kind() == tg::data::Tokenizer::Kind::Bpe) {
        tokenizer.save(path);
        return;
    }
    const std::string text = tokenizer.to_json() + "\n";
    tg::write_file_atomically(path, text.data(), text.size(), "tokenizer");
}

tg::data::Tokenizer load_tokenizer_file(const std::string& path) {
    if (std::filesystem::is_directory(path)) return tg::data::Tokenizer::load(path);  // GPT-2's or HF's files
    std::ifstream in(path, std::ios::binary);
    if (!in) throw tg::IOError("tokenizer: " + path + ": cannot open the file");
    std::ostringstream text;
    text << in.rdbuf();
    const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("kind")) {  // our short form
        try {
            return tg::data::Tokenizer::from_json(text.str());
        } catch (const tg::Error& e) {
            throw tg::IOError("tokenizer: " + path + ": " + e.what());
        }
    }
    return tg::data::Tokenizer::load(path);  // Hugging Face's tokenizer.json (errors name the file)
}

tg::data::Tokenizer tokenizer_from_argument(const std::string& argument) {
    if (argument == "byte") return tg::data::Tokenizer::byte_level();
    return load_tokenizer_file(argument);
}

}  // namespace tg_gpt
