// tg-gpt: train, sample and evaluate a GPT on text from the command line (README command 1).
//
//   tg-gpt train  --preset small --out runs/small          train (on the Debian fortunes corpus by default)
//   tg-gpt sample --ckpt runs/small --prompt "The "        continue a prompt
//   tg-gpt eval   --ckpt runs/small                        validation loss of a checkpoint
//   tg-gpt plot   --runs runs/a runs/b --out cmp.png       the loss curves of several runs on one picture
//   tg-gpt tokenizer train|encode|decode ...               byte-level BPE (tokenizer_cmd.cpp)
//   tg-gpt sample|eval|train --from-hf gpt2                a Hugging Face GPT-2 folder (hf.cpp, docs/gpt.md §9)
//   tg-gpt export --ckpt runs/mine --to-hf mine-hf         a checkpoint written as a Hugging Face GPT-2 folder
//   tg-gpt prepare --data D --tokenizer T --out DIR        a corpus as token shards for `train --data DIR`
//
// The flags and the checkpoint format are fixed in the design's interfaces.md; docs/gpt.md explains the
// model, the data and the training. The commands live in train.cpp, sample.cpp, eval.cpp and plot.cpp. The
// flags every program shares (--threads, --seed, --json, --out) and the exit statuses (0 ok, 1 failure at run
// time, 2 bad input) come from examples/common/cli.h.

#include "commands.h"
#include "hf.h"
#include "presets.h"
#include "tokenizer_cmd.h"

#include "nn/data/text_corpus.h"

#include <tapegrad/tapegrad.h>

#include "examples/common/cli.h"

#include <cstdio>
#include <string>
#include <tuple>

int main(int argc, char** argv) {
    using namespace tg_gpt;
    CLI::App app{"tg-gpt: train, sample and evaluate a small GPT language model with tapegrad"};
    app.require_subcommand(1);

    // ---- train ---------------------------------------------------------------------------------------------------
    std::string preset_help = "model size and recipe:";
    for (const Preset& p : presets()) preset_help += "\n  " + p.name + ": " + p.purpose;
    TrainArgs t;
    CLI::App* train = app.add_subcommand("train", "train a GPT on a text corpus, with checkpoints and a loss plot");
    train->add_option("--data", t.data, std::string("a text file or a folder of text files (default: ") +
                                            tg::data::kDefaultCorpusPath + ", the Debian fortunes)");
    train->add_option("--preset", t.preset, preset_help)->capture_default_str();
    train->add_option("--tokenizer", t.tokenizer, "byte (vocab 256, lossless), char (vocabulary from the corpus), bpe "
                      "(byte-level BPE of --vocab tokens trained on the corpus, cached in --out) or the path of a "
                      "tokenizer.json (default: the preset's; a prepared --data folder brings its own)");
    train->add_option("--vocab", t.vocab, "vocabulary size of --tokenizer bpe (default: the preset's)")
        ->check(CLI::Range(257, 1 << 20));
    train->add_option("--steps", t.steps, "optimizer steps (default: the preset's)")->check(CLI::PositiveNumber);
    train->add_option("--batch", t.batch, "sequences per batch B (default: the preset's)")->check(CLI::PositiveNumber);
    train->add_option("--seq", t.seq, "tokens per sequence T = the model's block size (default: the preset's)")
        ->check(CLI::PositiveNumber);
    train->add_option("--lr", t.lr, "peak learning rate of AdamW (default: the preset's)")->check(CLI::PositiveNumber);
    train->add_option("--min-lr", t.min_lr, "learning rate at the end of the cosine decay (default: the preset's)")
        ->check(CLI::NonNegativeNumber);
    train->add_option("--warmup", t.warmup, "linear warm-up steps (default: the preset's)")->check(CLI::NonNegativeNumber);
    train->add_option("--weight-decay", t.weight_decay, "AdamW's decoupled weight decay")->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    train->add_option("--grad-clip", t.grad_clip, "clip the gradient's global norm to this")->capture_default_str()
        ->check(CLI::PositiveNumber);
    train->add_option("--dropout", t.dropout, "dropout probability")->capture_default_str()->check(CLI::Range(0.0, 0.99));
    train->add_option("--attention", t.attention, "attention of every layer: exact, approx_backward (exact forward, "
                      "polynomial backward), approx (polynomial forward and backward) or auto")
        ->check(CLI::IsMember({"exact", "approx_backward", "approx", "auto"}))->capture_default_str();
    train->add_option("--degree", t.degree, "polynomial degree of the approximate attention (2 or 4)")
        ->capture_default_str();
    train->add_option("--grad", t.grad, "approx_backward's gradient: consistent or plugin")
        ->check(CLI::IsMember({"consistent", "plugin"}))->capture_default_str();
    train->add_option("--window", t.window, "approximate attention: the last W keys of each row exactly (0: none)")
        ->capture_default_str();
    train->add_option("--sinks", t.sinks, "approximate attention: the first S keys exactly (0: none)")
        ->capture_default_str();
    train->add_flag("--auto-window", t.auto_window,
                    "with --attention auto: choose the window W (0, 64 or 256) from the far scores, per layer and step");
    train->add_flag("--qk-layernorm", t.qk_layernorm, "layer-normalise q and k (bounded attention scores)");
    train->add_option("--qk-temperature", t.qk_temperature, "score bound with --qk-layernorm")->capture_default_str();
    train->add_flag("--rope", t.rope, "rotary position embeddings instead of learned ones");
    tg::cli::add_seed(*train, t.seed, "seed of the weights, dropout and data windows");
    tg::cli::add_threads(*train, t.threads);
    tg::cli::add_out(*train, t.out, "checkpoint directory (default: runs/<preset>)");
    train->add_option("--from-hf", t.from_hf, "fine-tune the Hugging Face GPT-2 in this folder (config.json, "
                      "model.safetensors, tokenizer) instead of training a preset's model from scratch");
    train->add_flag("--resume", t.resume, "continue the checkpoint in --out exactly where it stopped");
    train->add_flag("--force", t.force, "train afresh even if --out already holds a checkpoint (overwrites it)")
        ->excludes("--resume");
    train->add_option("--eval-every", t.eval_every, "evaluate, log and checkpoint every N steps (default: the preset's)")
        ->check(CLI::PositiveNumber);
    train->add_option("--eval-batches", t.eval_batches, "validation batches per evaluation (default: the preset's)")
        ->check(CLI::PositiveNumber);
    tg::cli::add_json(*train, t.json, "one line per evaluation");
    train->add_option("--stop-after", t.stop_after, "stop after N steps of this invocation, with a checkpoint "
                      "(as if interrupted; for testing --resume)")->check(CLI::PositiveNumber);
    train->add_flag("--detect-anomaly", t.detect_anomaly, "check every op's output and every gradient for NaN/Inf "
                    "and name the first op that produced one (slow; for debugging a diverging run)");
    train->add_option("--sample-tokens", t.sample_tokens, "tokens to sample at the end (0: none)")
        ->capture_default_str()->check(CLI::NonNegativeNumber);

    // ---- sample --------------------------------------------------------------------------------------------------
    SampleArgs s;
    CLI::App* sample = app.add_subcommand("sample", "continue a prompt with a trained model, streaming the text");
    CLI::Option* sample_ckpt = sample->add_option("--ckpt", s.ckpt, "checkpoint directory");
    sample->add_option("--from-hf", s.from_hf, "a Hugging Face GPT-2 folder instead of a checkpoint")->excludes(sample_ckpt);
    sample->add_option("--prompt", s.prompt, "text to continue (default: start of a new line)");
    sample->add_option("--tokens", s.tokens, "tokens to generate")->capture_default_str()->check(CLI::NonNegativeNumber);
    sample->add_option("--temperature", s.temperature, "softmax temperature (lower: more predictable)")
        ->capture_default_str()->check(CLI::PositiveNumber);
    sample->add_option("--top-k", s.top_k, "sample among the k likeliest tokens only (0: all)")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    tg::cli::add_seed(*sample, s.seed, "seed of the draws");
    tg::cli::add_threads(*sample, s.threads);
    sample->add_flag("--no-cache", s.no_cache, "recompute the whole context for every token (slow; for checking)");
    sample->add_flag("--allow-nonfinite", s.allow_nonfinite, "load a checkpoint even if its weights hold NaN/Inf");

    // ---- eval ----------------------------------------------------------------------------------------------------
    EvalArgs e;
    CLI::App* eval = app.add_subcommand("eval", "validation loss of a checkpoint on a corpus (its last 10%)");
    CLI::Option* eval_ckpt = eval->add_option("--ckpt", e.ckpt, "checkpoint directory");
    eval->add_option("--from-hf", e.from_hf, "a Hugging Face GPT-2 folder instead of a checkpoint")->excludes(eval_ckpt);
    eval->add_option("--data", e.data, "a text file or folder (default: the data the checkpoint was trained on)");
    eval->add_option("--batch", e.batch, "windows per batch (default: the checkpoint's)")->check(CLI::PositiveNumber);
    eval->add_option("--seq", e.seq, "tokens per window (default: the checkpoint's)")->check(CLI::PositiveNumber);
    eval->add_option("--eval-batches", e.eval_batches, "batches (default: the checkpoint's)")->check(CLI::PositiveNumber);
    tg::cli::add_threads(*eval, e.threads)->description("worker threads of the kernels (0: the checkpoint's)");
    tg::cli::add_json(*eval, e.json, "{\"step\", \"val_loss\", \"val_bpb\", \"tokens\", \"bytes\"}");
    eval->add_flag("--allow-nonfinite", e.allow_nonfinite, "load a checkpoint even if its weights hold NaN/Inf");

    // ---- prepare -------------------------------------------------------------------------------------------------
    PrepareArgs r;
    CLI::App* prepare = app.add_subcommand("prepare", "tokenize a corpus into token shards (train.bin, val.bin, "
                                           "tokenizer.json) for `train --data DIR`");
    prepare->add_option("--data", r.data, std::string("a text file or a folder of text files (default: ") +
                                              tg::data::kDefaultCorpusPath + ")");
    prepare->add_option("--tokenizer", r.tokenizer, "a tokenizer.json (from `tg-gpt tokenizer train` or a checkpoint), "
                        "or 'byte'")->required();
    tg::cli::add_out(*prepare, r.out, "the folder to write the shards and tokenizer.json into")->required();

    // ---- plot ----------------------------------------------------------------------------------------------------
    PlotArgs p;
    CLI::App* plot = app.add_subcommand("plot", "draw the loss curves of several runs (their loss.csv) on one PNG");
    plot->add_option("--runs", p.runs, "run directories (each holds the loss.csv of tg-gpt train)")->required();
    plot->add_option("--labels", p.labels, "legend labels, one per run, comma-separated (default: the directory names)")
        ->delimiter(',');
    tg::cli::add_out(*plot, p.out, "the PNG file to write")->required();
    plot->add_option("--metric", p.metric, "the curve to draw: val_loss (nats per token, each evaluation), val_bpb "
                     "(bits per byte: compares runs with different tokenizers) or train_loss (each step)")
        ->check(CLI::IsMember({"val_loss", "val_bpb", "train_loss"}))->capture_default_str();
    plot->add_option("--x-label", p.x_label, "the x axis' title (the loss.csv's first column)")->capture_default_str();
    plot->add_option("--y-label", p.y_label, "the y axis' title (default: the metric's name and unit)");
    plot->add_flag("--log-y", p.log_y, "logarithmic y axis (the values must be positive)");
    plot->add_option("--width", p.width, "picture width in pixels")->capture_default_str()->check(CLI::Range(320, 4000));
    plot->add_option("--height", p.height, "picture height in pixels")->capture_default_str()->check(CLI::Range(240, 4000));

    TokenizerArgs k;
    add_tokenizer_command(app, k);

    // ---- export --------------------------------------------------------------------------------------------------
    ExportArgs x;
    CLI::App* exporter = app.add_subcommand("export", "write a checkpoint as a Hugging Face GPT-2 folder");
    exporter->add_option("--ckpt", x.ckpt, "checkpoint directory")->required();
    exporter->add_option("--to-hf", x.to_hf, "the folder to write (config.json, model.safetensors, tokenizer.json)")
        ->required();

    if (const int status = tg::cli::parse(app, argc, argv); status >= 0) return status;
    if (k.command->parsed()) return run_tokenizer(k);
    for (const auto& [cmd, ckpt, from_hf] : {std::tuple{sample, s.ckpt, s.from_hf}, std::tuple{eval, e.ckpt, e.from_hf}}) {
        if (cmd->parsed() && ckpt.empty() && from_hf.empty()) {
            std::fprintf(stderr, "tg-gpt %s: give --ckpt DIR (a tg-gpt checkpoint) or --from-hf DIR (a Hugging Face "
                         "GPT-2 folder)\n", cmd->get_name().c_str());
            return 2;
        }
    }

    const char* command = train->parsed()      ? "train"
                          : sample->parsed()   ? "sample"
                          : plot->parsed()     ? "plot"
                          : exporter->parsed() ? "export"
                          : prepare->parsed()  ? "prepare"
                                               : "eval";
    return tg::cli::run_main(std::string("tg-gpt ") + command, [&] {
        if (train->parsed()) return run_train(t, [train](const std::string& flag) { return train->count(flag) > 0; });
        if (sample->parsed()) return run_sample(s);
        if (plot->parsed()) return run_plot(p);
        if (exporter->parsed()) return run_export(x);
        if (prepare->parsed()) return run_prepare(r);
        return run_eval(e);
    });
}
