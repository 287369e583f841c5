// tg-vit train: AdamW + warm-up/cosine on Fashion-MNIST with light augmentation; test accuracy every epoch.
//
// One step is the same four lines as in PyTorch:
//   loss = cross_entropy(model(x), y);  loss.backward();  optimizer.step();  optimizer.zero_grad()

#include "commands.h"
#include "common.h"

#include "examples/common/cli.h"

#include "examples/common/cli.h"
#include "examples/common/memory.h"
#include "nn/models/model_size.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <cstdio>

namespace vit {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// CPU time of the process (all threads, user + system): on a shared machine a steadier measure than wall time.
double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

}  // namespace

int run_train(const TrainOptions& o) {
    if (!o.out.empty()) tg::cli::check_writable_folder("tg-vit train", o.out);  // now, not after the first epoch
    tg::cli::require_memory(
        "tg-vit train",
        {{"weights, gradients and AdamW moments",
          tg::cli::saturating_product({static_cast<std::uint64_t>(tg::nn::vit_parameter_count(o.model)), 16})},
         {"activations of one step", tg::nn::vit_activation_bytes(o.model, o.batch, true)}},
        "use a smaller --batch or model");
    tg::manual_seed(o.seed);
    tg::data::ImageDataset train = tg::data::load_mnist(o.data, "train");
    tg::data::ImageDataset test = tg::data::load_mnist(o.data, "t10k");
    if (o.train_limit > 0 && o.train_limit < train.images.size(0)) {
        train = {train.images.narrow(0, 0, o.train_limit).contiguous(), train.labels.narrow(0, 0, o.train_limit).contiguous()};
    }
    if (o.test_limit > 0 && o.test_limit < test.images.size(0)) {
        test = {test.images.narrow(0, 0, o.test_limit).contiguous(), test.labels.narrow(0, 0, o.test_limit).contiguous()};
    }
    const std::int64_t N = train.images.size(0);
    const std::int64_t steps_per_epoch = (N + o.batch - 1) / o.batch;  // the last batch may be smaller
    const std::int64_t total_steps = o.max_steps > 0 ? std::min(o.max_steps, o.epochs * steps_per_epoch)
                                                     : o.epochs * steps_per_epoch;

    auto model = std::make_shared<tg::nn::ViT>(o.model);
    // Weight decay on matrices only: biases, LayerNorm parameters and the embeddings are not decayed (as in
    // nanoGPT and timm), which needs two optimizers since ours have no parameter groups.
    std::vector<tg::Tensor> decayed, plain;
    for (const auto& [name, p] : model->named_parameters()) (p.dim() >= 2 && name.find("embed") == std::string::npos &&
                                                             name != "cls_token" ? decayed : plain).push_back(p);
    tg::optim::AdamW opt_decay(decayed, o.lr, 0.9, 0.999, 1e-8, o.weight_decay);
    tg::optim::AdamW opt_plain(plain, o.lr, 0.9, 0.999, 1e-8, 0.0);
    const tg::optim::WarmupCosine schedule{o.lr, std::min(o.warmup, total_steps), total_steps, o.lr * 0.01};

    if (!o.json) {
        std::printf("ViT: %lld parameters, %lld layers, %lld heads, E=%lld, MLP %lld, %lld tokens, pool %s, attention %s\n",
                    static_cast<long long>(model->num_parameters()), static_cast<long long>(o.model.n_layer),
                    static_cast<long long>(o.model.n_head), static_cast<long long>(o.model.n_embd),
                    static_cast<long long>(o.model.mlp_hidden), static_cast<long long>(o.model.num_tokens()),
                    o.model.pool.c_str(), tg::nn::functional::to_string(o.model.attention.mode).c_str());
        std::printf("data: %lld training and %lld test images from %s; %lld steps of batch %lld (%lld epochs), %d threads\n",
                    static_cast<long long>(N), static_cast<long long>(test.images.size(0)), o.data.c_str(),
                    static_cast<long long>(total_steps), static_cast<long long>(o.batch),
                    static_cast<long long>(o.epochs), tg::get_num_threads());
    }

    tg::Generator data_gen(o.seed + 1);
    tg::cli::ProgressLine progress;  // on stderr, so stdout keeps the results (or pure JSON lines)
    const auto start = std::chrono::steady_clock::now();
    double test_accuracy = 0, train_loss = 0;
    std::int64_t step = 0;
    model->train();
    for (std::int64_t epoch = 1; epoch <= o.epochs && step < total_steps; ++epoch) {
        const std::vector<std::int64_t> order = tg::randperm(N, &data_gen).to_vector<std::int64_t>();
        double loss_sum = 0;
        std::int64_t loss_count = 0, correct = 0, seen = 0;
        for (std::int64_t s = 0; s < steps_per_epoch && step < total_steps; ++s) {
            const std::int64_t count = std::min(o.batch, N - s * o.batch);
            const std::int64_t* idx = order.data() + s * o.batch;
            const tg::Tensor x = make_batch(train.images, idx, count, o.augment ? &data_gen : nullptr, o.shift, o.flip);  // (B, 1, 28, 28)
            std::vector<std::int64_t> y_values(idx, idx + count);
            for (auto& v : y_values) v = train.labels.data<std::int64_t>()[v];
            const tg::Tensor y = tg::from_vector(y_values);  // (B)

            const double lr = schedule(step);
            opt_decay.set_lr(lr);
            opt_plain.set_lr(lr);
            const tg::Tensor logits = model->forward(x);  // (B, 10)
            const tg::Tensor loss = tg::nn::functional::cross_entropy(logits, y);
            loss.backward();
            // The NaN/Inf guard (nn/optim/guard.h): stop before an update that would spoil every weight.
            const double norm = o.clip > 0 ? tg::optim::clip_grad_norm_(model->parameters(), o.clip)
                                           : tg::optim::grad_norm(model->parameters());
            tg::optim::check_finite_step(step + 1, loss.item(), norm);
            opt_decay.step();
            opt_plain.step();
            opt_decay.zero_grad();
            opt_plain.zero_grad();
            ++step;

            loss_sum += loss.item() * count;
            loss_count += count;
            correct += static_cast<std::int64_t>(accuracy(tg::argmax(logits.detach(), 1), y) * count + 0.5);
            seen += count;
            if (s % 10 == 9 || s + 1 == steps_per_epoch) {
                const double t = seconds_since(start);
                char line[160];
                std::snprintf(line, sizeof line, "epoch %lld/%lld  step %5lld/%lld  loss %.4f  train acc %.3f  lr %.2e  "
                              "%.0f img/s  %.0f s", static_cast<long long>(epoch), static_cast<long long>(o.epochs),
                              static_cast<long long>(step), static_cast<long long>(total_steps), loss_sum / loss_count,
                              static_cast<double>(correct) / seen, lr, step * static_cast<double>(o.batch) / t, t);
                progress.show(line);
            }
        }
        progress.break_line();
        train_loss = loss_sum / std::max<std::int64_t>(loss_count, 1);
        const double eval_start = seconds_since(start);
        test_accuracy = accuracy(predict(*model, test.images), test.labels);
        const double t = seconds_since(start);
        nlohmann::ordered_json record = {{"epoch", epoch},         {"step", step},
                                         {"train_loss", train_loss}, {"train_accuracy", double(correct) / seen},
                                         {"test_accuracy", test_accuracy}, {"seconds", t},
                                         {"cpu_seconds", cpu_seconds()},
                                         {"eval_seconds", t - eval_start}};
        if (o.json) {
            std::printf("%s\n", record.dump().c_str());
        } else {
            std::printf("epoch %lld: train loss %.4f, test accuracy %.4f (%.0f s)\n", static_cast<long long>(epoch),
                        train_loss, test_accuracy, t);
        }
        std::fflush(stdout);
        if (!o.out.empty()) {
            const nlohmann::ordered_json training = {{"epochs_done", epoch},   {"step", step},
                                                     {"batch", o.batch},       {"lr", o.lr},
                                                     {"weight_decay", o.weight_decay}, {"seed", o.seed},
                                                     {"augment", o.augment}, {"shift", o.shift}, {"flip", o.flip},
                                                     {"train_loss", train_loss}, {"test_accuracy", test_accuracy}};
            save_checkpoint(o.out, *model, training.dump());
        }
    }
    const double seconds = seconds_since(start);
    if (o.json) {
        const nlohmann::ordered_json last = {{"test_accuracy", test_accuracy}, {"train_loss", train_loss},
                                             {"steps", step}, {"seconds", seconds},
                                             {"cpu_seconds", cpu_seconds()}};
        std::printf("%s\n", last.dump().c_str());
    } else {
        std::printf("test accuracy %.4f after %lld steps in %.1f s (%.1f s CPU)%s%s\n", test_accuracy,
                    static_cast<long long>(step), seconds, cpu_seconds(), o.out.empty() ? "" : "; checkpoint in ",
                    o.out.c_str());
    }
    return 0;
}

}  // namespace vit
