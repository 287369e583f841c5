// Chapter 9 (docs/course/09-gpt-training.md): a small GPT trained with AdamW, a warm-up + cosine learning rate
// and gradient clipping, on a text it can memorise.
//
//   build/docs/course-ch9-training

#include <tapegrad/tapegrad.h>

#include "docs/course/examples/course_check.h"

#include <cstdio>

using course::expect;

int main() {
    // [data]
    const std::string text = "the cat sat on the mat. the dog sat on the log. ";
    std::vector<std::int64_t> ids;
    for (int rep = 0; rep < 8; ++rep)
        for (unsigned char c : text) ids.push_back(c);  // bytes as tokens: vocabulary 256
    const std::int64_t B = 4, T = 24;
    // Batch b starts at token 7·b + step (mod the text): x = ids[i .. i+T), y = ids[i+1 .. i+T+1).
    auto batch = [&](std::int64_t step, tg::Tensor& x, tg::Tensor& y) {
        std::vector<std::int64_t> xs, ys;
        for (std::int64_t b = 0; b < B; ++b) {
            const std::int64_t start = (7 * b + 5 * step) % static_cast<std::int64_t>(text.size());
            for (std::int64_t t = 0; t < T; ++t) {
                xs.push_back(ids[static_cast<std::size_t>(start + t)]);
                ys.push_back(ids[static_cast<std::size_t>(start + t + 1)]);
            }
        }
        x = tg::from_vector(xs, {B, T});
        y = tg::from_vector(ys, {B, T});
    };
    // [data]

    // [model]
    tg::manual_seed(0);
    tg::nn::GPTConfig config;
    config.vocab_size = 256;
    config.block_size = T;
    config.n_layer = 2;
    config.n_head = 2;
    config.n_embd = 32;
    tg::nn::GPT model(config);
    // [model]

    // [loop]
    const int steps = 80;
    tg::optim::AdamW optimizer(model.parameters(), 1e-2, 0.9, 0.95, 1e-8, 0.01);
    tg::optim::LRScheduler schedule(optimizer, tg::optim::WarmupCosine{1e-2, 10, steps, 1e-3});
    double first = 0, last = 0;
    for (int step = 0; step < steps; ++step) {
        tg::Tensor x, y;
        batch(step, x, y);
        tg::Tensor loss = model.loss(x, y);                                    // forward: mean cross-entropy
        loss.backward();                                                       // the tape, backwards
        const double norm = tg::optim::clip_grad_norm_(model.parameters(), 1.0);  // global L2 norm <= 1
        optimizer.step();                                                      // AdamW at the current lr
        optimizer.zero_grad();
        schedule.step();                                                       // lr for the next step
        if (step == 0) first = loss.item<double>();
        last = loss.item<double>();
        if (step % 20 == 0 || step == steps - 1)
            std::printf("step %2d  loss %.3f  grad norm %.2f  lr %.4f\n", step, loss.item<double>(), norm,
                        optimizer.lr());
    }
    // [loop]
    expect(first > 5.0, "the untrained model guesses among 256 bytes: loss near ln 256 = 5.5");
    expect(last < 0.5 * first, "training cuts the loss by more than half");
    return course::failures == 0 ? 0 : 1;
}
