// tg-gpt eval: the validation loss of a checkpoint on a corpus: the mean cross-entropy (nats per token) over
// evenly spaced windows of the corpus's last 10% (or of a prepared folder's val.bin), the same windows training
// evaluates on, and the same loss in bits per byte of that text. On the training data it reproduces the run's
// last validation loss.

#include "checkpoint.h"
#include "commands.h"
#include "common.h"
#include "hf.h"
#include "data_source.h"

#include "examples/common/cli.h"

#include "examples/common/memory.h"
#include "nn/models/model_size.h"

#include <tapegrad/tapegrad.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tg_gpt {

namespace {

// What --from-hf evaluates on when not told: the finetune preset's windows (there is no training run to copy).
TrainArgs hf_eval_defaults() {
    TrainArgs a;
    a.preset = "finetune";
    a.apply_preset();
    return a;
}

}  // namespace

int run_eval(const EvalArgs& args) {
    // The model, its tokenizer and the settings it was trained with (a Hugging Face folder has none: step 0).
    HFModel loaded;
    TrainArgs trained;
    std::int64_t step = 0;
    if (!args.from_hf.empty()) {
        loaded = load_hf_model(args.from_hf);
        trained = hf_eval_defaults();
    } else {
        const CheckpointConfig config = load_checkpoint_config(args.ckpt);
        check_weights_fit(args.ckpt, config.model);  // sizes first: an edited config.json allocates nothing
        loaded = {std::make_shared<tg::nn::GPT>(config.model), config.tokenizer};
        step = load_model_weights(args.ckpt, *loaded.model, args.allow_nonfinite);
        trained = config.training;
    }
    tg::nn::GPT& model = *loaded.model;
    const int threads = args.threads > 0 ? args.threads : trained.threads;
    tg::cli::apply_threads(threads);
    const std::string data = args.data.empty() ? trained.data : args.data;
    const std::int64_t batch = args.batch > 0 ? args.batch : trained.batch;
    const std::int64_t seq = args.seq > 0 ? args.seq : std::min(trained.seq, model.config.block_size);
    const std::int64_t n_batches = args.eval_batches > 0 ? args.eval_batches : trained.eval_batches;
    if (seq > model.config.block_size) {
        throw tg::ValueError("tg-gpt eval: --seq " + std::to_string(seq) + " exceeds the model's block size " +
                             std::to_string(model.config.block_size));
    }

    // Memory before allocating (examples/common/memory.h): the validation batches and one forward pass.
    using tg::cli::saturating_product;
    tg::cli::require_memory(
        "tg-gpt eval",
        {{"activations of one batch", tg::nn::gpt_activation_bytes(model.config, batch, seq, false)},
         {"validation batches", saturating_product({static_cast<std::uint64_t>(n_batches),
                                                    static_cast<std::uint64_t>(batch), static_cast<std::uint64_t>(seq),
                                                    16})}},
        "use a smaller --batch or --eval-batches");
    const RunData tokens = load_run_data(data, loaded.tokenizer, /*quiet=*/args.json);
    check_data_fits(tokens, seq, data);
    const ValidationSet set = make_validation_set(tokens.validation, loaded.tokenizer, batch, seq, n_batches);
    const ValidationResult result = evaluate_validation(model, set);
    const double loss = result.loss;

    if (args.json) {
        nlohmann::ordered_json j;
        j["step"] = step;
        j["val_loss"] = loss;
        j["val_bpb"] = result.bpb;
        j["tokens"] = set.tokens;
        j["bytes"] = set.bytes;
        std::printf("%s\n", j.dump().c_str());
    } else {
        std::printf("val loss %.4f nats/token (%.3f bits/token, perplexity %.2f) = %.4f bits/byte, at step %lld, on "
                    "%lld windows of %lld tokens (%lld bytes) from the validation split of %s\n", loss,
                    loss / std::log(2.0), std::exp(loss), result.bpb, static_cast<long long>(step),
                    static_cast<long long>(n_batches * batch), static_cast<long long>(seq),
                    static_cast<long long>(set.bytes), data.empty() ? "the fortunes corpus" : data.c_str());
    }
    return 0;
}

}  // namespace tg_gpt
