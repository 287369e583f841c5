#include "presets.h"

#include <tapegrad/tapegrad.h>

namespace tg_gpt {

const std::vector<Preset>& presets() {
    // Learning rates as nanoGPT's character-level recipes: small models tolerate 1e-3 and above; the
    // cosine decays to a tenth of it. Warm-up: a few percent of the run.
    static const std::vector<Preset> all = {
        //  name      purpose                                  tokenizer vocab  L  H  C    B  T    steps warm eval evb  lr  min_lr
        {"tiny", "2 layers, 2 heads, C=32, T=64, bytes: seconds, for tests", "byte", 256, 2, 2, 32, 8, 64, 60, 5, 20, 4,
         3e-3, 3e-4},
        // small: chosen by the measured runs of docs/gpt.md §8 (vocabulary 2048 vs 4096, width, depth, steps).
        // 2500 steps, not 3500: the corpus is 0.77 M training tokens, and after ~7 passes over it the model
        // memorises (validation loss still falls a little, but its samples hold fewer real words).
        {"small", "BPE of 4096 tokens, 4 layers, 4 heads, C=128, T=256, batch 8, 2500 steps: the README run", "bpe",
         4096, 4, 4, 128, 8, 256, 2500, 60, 100, 8, 2e-3, 2e-4},
        {"medium", "config M: 6 layers, 6 heads, C=384, T=512, batch 4, bytes", "byte", 256, 6, 6, 384, 4, 512, 5000,
         200, 250, 8, 6e-4, 6e-5},
        // long: T = 4096 for the approximate attention (docs/approximate-attention.md, "Long context"). Narrow
        // (C = 64, head dim 16, where the polynomial's rank is 153 for g = 2) so attention is most of a step;
        // batch 4: one step is 141 GFLOP, about 0.8 s with exact attention on this machine's 2 threads (tg-bench
        // gpt --config L, 40% of tg-bench peak). Bytes, so a window is 4096 characters of the corpus.
        {"long", "T=4096, 4 layers, 4 heads, C=64 (head dim 16), batch 4, bytes, 300 steps: long context", "byte", 256,
         4, 4, 64, 4, 4096, 300, 20, 50, 4, 2e-3, 2e-4},
        // The recipe for fine-tuning a pretrained model (`--from-hf`, which brings its own size): GPT-2 small's shape.
        {"finetune", "fine-tune with --from-hf: batch 4, T=256, 300 steps, lr 1e-4 -> 1e-5 (size and tokenizer: "
                     "the folder's; GPT-2 small's shape and bytes without --from-hf)", "byte", 256, 12, 12, 768, 4, 256, 300,
         30, 50, 4, 1e-4, 1e-5},
    };
    return all;
}

const Preset& find_preset(const std::string& name) {
    std::string names;
    for (const Preset& p : presets()) {
        if (p.name == name) return p;
        names += (names.empty() ? "" : ", ") + p.name;
    }
    throw tg::ValueError("tg-gpt: unknown preset '" + name + "' (known: " + names + ")");
}

}  // namespace tg_gpt
