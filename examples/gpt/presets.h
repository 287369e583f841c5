#pragma once
// tg-gpt presets: a model size and a training recipe under one name (`--preset tiny|small|medium`).
// Every field can still be overridden by its own flag (--steps, --batch, --seq, --lr, ...).

#include <cstdint>
#include <string>
#include <vector>

namespace tg_gpt {

struct Preset {
    std::string name;
    std::string purpose;  // one line for --help
    // The tokenizer: "byte", or "bpe" with a vocabulary of `vocab` tokens trained on the corpus.
    std::string tokenizer;
    std::int64_t vocab;
    // The model (vocab_size comes from the tokenizer, block_size = seq).
    std::int64_t n_layer, n_head, n_embd;
    // The recipe.
    std::int64_t batch, seq, steps, warmup, eval_every, eval_batches;
    double lr, min_lr;
};

// tiny   2 layers, 2 heads, C = 32, T = 64: for the tests (seconds).
// small  the README default run: a BPE vocabulary of 4096 tokens trained on the corpus, config S (4 layers,
//        4 heads, C = 128, T = 256, batch 8), 2500 steps. Chosen by measured runs (docs/gpt.md §8): about 380
//        CPU-seconds in all (0.148 s per step measured with one thread), about 3.5 minutes of wall time on an
//        idle 2-core machine.
// medium config M (6 layers, 6 heads, C = 384, T = 512, batch 4).
// long   T = 4096 for the approximate attention modes: 4 layers, 4 heads, C = 64 (head dim 16), batch 4, bytes,
//        300 steps; about 0.8 s a step with exact attention on 2 threads (tg-bench gpt --config L).
// finetune  the recipe for `train --from-hf` (the model is the folder's): batch 4, T = 256, 300 steps, lr 1e-4
//        decaying to 1e-5 after 30 warm-up steps.
const std::vector<Preset>& presets();
// Throws tg::ValueError listing the names.
const Preset& find_preset(const std::string& name);

}  // namespace tg_gpt
