// tg-vit: a tiny Vision Transformer on Fashion-MNIST (docs/vit.md).
//
//   tg-vit train [--epochs 15] [--out vit-checkpoint] [--json]    train, test accuracy every epoch
//   tg-vit classify --ckpt DIR IMAGE...                           top-3 classes of any PNG/JPEG
//   tg-vit show --ckpt DIR [--out vit-show]                       pictures: predictions and attention maps
//
// Every command takes --threads P (0: all cores); exit status 0 ok, 1 failure at run time, 2 bad input
// (examples/common/cli.h, shared with tg-gpt, tg-attention and tg-bench).

#include "commands.h"

#include "examples/common/cli.h"

int main(int argc, char** argv) {
    CLI::App app{"A tiny Vision Transformer on Fashion-MNIST, with tapegrad"};
    app.require_subcommand(1);
    int threads = 0;  // every command takes --threads (examples/common/cli.h)

    vit::TrainOptions train;
    std::string attention = "exact";
    CLI::App* train_cmd = app.add_subcommand("train", "train on Fashion-MNIST and save a checkpoint");
    train_cmd->add_option("--data", train.data, "folder with the IDX files (gzip or not)");
    tg::cli::add_out(*train_cmd, train.out, "checkpoint folder (model.safetensors + config.json); empty: none");
    train_cmd->add_option("--epochs", train.epochs, "passes over the training set")->check(CLI::PositiveNumber);
    train_cmd->add_option("--batch", train.batch, "images per step")->check(CLI::PositiveNumber);
    train_cmd->add_option("--lr", train.lr, "peak AdamW learning rate")->check(CLI::PositiveNumber);
    train_cmd->add_option("--weight-decay", train.weight_decay, "AdamW weight decay of the matrices")->check(CLI::NonNegativeNumber);
    train_cmd->add_option("--warmup", train.warmup, "linear warm-up steps before the cosine decay")->check(CLI::NonNegativeNumber);
    train_cmd->add_option("--clip", train.clip, "gradient-norm clipping (0: off)")->check(CLI::NonNegativeNumber);
    train_cmd->add_option("--max-steps", train.max_steps, "stop after this many steps (0: all epochs)");
    train_cmd->add_option("--train-limit", train.train_limit, "use only the first N training images (0: all)");
    train_cmd->add_option("--test-limit", train.test_limit, "use only the first N test images (0: all)");
    tg::cli::add_seed(*train_cmd, train.seed, "seed of weights, shuffling and augmentation");
    train_cmd->add_option("--layers", train.model.n_layer, "transformer blocks")->check(CLI::PositiveNumber);
    train_cmd->add_option("--heads", train.model.n_head, "attention heads")->check(CLI::PositiveNumber);
    train_cmd->add_option("--dim", train.model.n_embd, "embedding width E")->check(CLI::PositiveNumber);
    train_cmd->add_option("--mlp", train.model.mlp_hidden, "hidden width of the MLPs")->check(CLI::PositiveNumber);
    train_cmd->add_option("--patch", train.model.patch_size, "patch size P (28 must be a multiple)")->check(CLI::PositiveNumber);
    train_cmd->add_option("--pool", train.model.pool, "cls or mean")->check(CLI::IsMember({"cls", "mean"}));
    train_cmd->add_option("--dropout", train.model.dropout, "dropout probability")->check(CLI::Range(0.0, 0.99));
    train_cmd->add_option("--attention", attention, "exact, approx_backward, approx or auto");
    train_cmd->add_option("--degree", train.model.attention.degree, "polynomial degree of the approximate modes");
    train_cmd->add_option("--shift", train.shift, "augmentation: random shifts of up to this many pixels")
        ->check(CLI::Range(0, 8));
    train_cmd->add_flag("--flip", train.flip, "augmentation: also mirror half of the images left-right");
    train_cmd->add_flag("--no-augment", [&](std::int64_t) { train.augment = false; }, "no random shifts and flips");
    tg::cli::add_json(*train_cmd, train.json, "one line per epoch, the last {\"test_accuracy\": ..}");
    tg::cli::add_threads(*train_cmd, threads);

    vit::ClassifyOptions classify;
    CLI::App* classify_cmd = app.add_subcommand("classify", "print the top-3 classes of PNG/JPEG/BMP images");
    classify_cmd->add_option("--ckpt", classify.ckpt, "checkpoint folder of tg-vit train");
    classify_cmd->add_option("images", classify.images, "image files")->required()->check(CLI::ExistingFile);
    classify_cmd->add_flag("--no-invert", classify.no_invert, "never invert light-background pictures");
    classify_cmd->add_option("--max-pixels", classify.max_pixels, "refuse images with more pixels than this, before "
                             "decoding them (a small compressed file can decode to gigabytes)")
        ->capture_default_str()->check(CLI::PositiveNumber);
    tg::cli::add_json(*classify_cmd, classify.json, "one line per image");
    tg::cli::add_threads(*classify_cmd, threads);

    vit::ShowOptions show;
    CLI::App* show_cmd = app.add_subcommand("show", "write PNGs: test images with labels, attention maps of the class token");
    show_cmd->add_option("--ckpt", show.ckpt, "checkpoint folder of tg-vit train");
    show_cmd->add_option("--data", show.data, "folder with the IDX files");
    tg::cli::add_out(*show_cmd, show.out, "writes OUT-grid.png and OUT-attention.png");
    show_cmd->add_option("--count", show.count, "test images in the grid")->check(CLI::Range(1, 400));
    show_cmd->add_option("--rows", show.attention_rows, "images in the attention picture")->check(CLI::Range(1, 64));
    show_cmd->add_option("--layer", show.layer, "which block's attention (-1: the last)");
    show_cmd->add_option("--first", show.first, "index of the first test image shown")->check(CLI::NonNegativeNumber);
    tg::cli::add_threads(*show_cmd, threads);

    if (const int status = tg::cli::parse(app, argc, argv); status >= 0) return status;
    const std::string command = *train_cmd ? "train" : *classify_cmd ? "classify" : "show";
    return tg::cli::run_main("tg-vit " + command, [&] {
        tg::cli::apply_threads(threads);
        if (*train_cmd) {
            train.model.attention.mode = tg::nn::functional::attention_mode_from_string(attention);
            train.model.validate();
            return vit::run_train(train);
        }
        if (*classify_cmd) return vit::run_classify(classify);
        return vit::run_show(show);
    });
}
