// The snippets of docs/gpt.md: text in, tokens, batches, a tiny GPT trained for a few steps, text out.
// Built and run by `meson test` (doc-gpt-tour); the output quoted in the page is what this prints.

#include <tapegrad/tapegrad.h>

#include "nn/data/text_batches.h"
#include "nn/data/text_corpus.h"
#include "nn/data/tokenizer.h"
#include "nn/models/gpt.h"
#include "nn/models/gpt_sample.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

int main() {
    // --- 1. a corpus: a file (or a folder) of text; fortune files separate entries by a line "%" -------------------
    const auto path = std::filesystem::temp_directory_path() / "tg-gpt-tour.txt";
    {
        std::ofstream out(path);
        for (int i = 0; i < 200; ++i) out << "To be or not to be, that is the question.\n%\nCarpe diem, quam minimum credula postero.\n%\n";
    }
    const tg::data::TextCorpus corpus = tg::data::load_text_corpus(path.string());   // a file or a folder of text
    std::filesystem::remove(path);
    std::cout << "corpus: " << corpus.text.size() << " bytes; starts \"" << corpus.text.substr(0, 44) << "\"\n";

    // --- 2. tokens: one per byte (vocab 256), lossless for any UTF-8 ---------------------------------------------
    const tg::data::Tokenizer tok = tg::data::Tokenizer::byte_level();               // vocab 256
    std::vector<std::int64_t> ids = tok.encode("h\xC3\xA9!");  // "hé!": é is two bytes in UTF-8
    std::cout << "encode(\"h\xC3\xA9!\") =";
    for (auto id : ids) std::cout << " " << id;
    std::cout << "  -> decode: \"" << tok.decode(ids) << "\"\n";

    // --- 3. split (last 10% = validation) and random windows; y is x shifted by one ---------------------------------
    tg::data::TokenSplit split = tg::data::split_train_validation(tok.encode(corpus.text), 0.1);
    auto train = std::make_shared<const std::vector<std::int64_t>>(split.train);
    tg::data::BatchLoader loader(tg::data::RandomWindows(train, /*batch=*/8, /*seq=*/32, /*seed=*/0));
    tg::data::TextBatch batch = loader.next();  // made ahead of time on the loader's own thread
    std::cout << "train " << split.train.size() << " tokens, validation " << split.validation.size() << "; batch x "
              << batch.x.describe() << ", y " << batch.y.describe() << "\n";

    // --- 4. a tiny GPT, trained for a few steps ----------------------------------------------------------------
    double first_loss = 0, last_loss = 0;  // checked at the end against what docs/gpt.md says
    tg::manual_seed(0);
    tg::nn::GPTConfig config;
    config.vocab_size = tok.vocab_size();
    config.block_size = 32;
    config.n_layer = 2;
    config.n_head = 2;
    config.n_embd = 32;
    tg::nn::GPT model(config);
    tg::optim::AdamW optimizer(model.parameters(), 3e-3, 0.9, 0.95, 1e-8, 0.0);
    for (int step = 1; step <= 60; ++step) {
        tg::data::TextBatch b = loader.next();  // x, y: (B, T) int64, y = x shifted by one
        tg::Tensor loss = model.loss(b.x, b.y);  // cross-entropy of next-token predictions, (B, T) -> []
        loss.backward();
        tg::optim::clip_grad_norm_(model.parameters(), 1.0);
        optimizer.step();
        optimizer.zero_grad();
        if (step == 1 || step % 20 == 0) std::printf("step %2d  loss %.3f\n", step, loss.item());
        if (step == 1) first_loss = loss.item();
        last_loss = loss.item();
    }

    // --- 5. sampling: seeded, streamed token by token through the KV cache ---------------------------------------------
    tg::nn::SamplingOptions options;
    options.temperature = 0.5;
    options.seed = 1;
    tg::data::TokenStreamDecoder stream(tok);  // holds back partial UTF-8 characters
    std::cout << "sample: To be";
    tg::nn::generate(model, tok.encode("To be"), 40, options,
                     [&](std::int64_t id) { std::cout << stream.push(id) << std::flush; });  // streamed, KV cache
    std::cout << stream.finish() << "\n";
    // The page: the first loss is ln 256 (an even bet over the bytes), and 60 steps bring it well below.
    return std::abs(first_loss - std::log(256.0)) < 0.1 && last_loss < first_loss - 2.0 ? 0 : 1;
}
