// A small GPT and a small ViT, for tests that switch an engine feature on and off (gradient pieces in
// core/gradient.h, gradient targets in autograd/) and require the same gradient bits either way.
#pragma once

#include "core/ops.h"
#include "core/random.h"
#include "core/threading.h"
#include "nn/models/gpt.h"
#include "nn/models/vit.h"
#include "test_util.h"

#include <doctest/doctest.h>

#include <functional>
#include <vector>

namespace tg::testing {

// On 1 and 2 threads, for each model: set_feature(true), a backward pass, set_feature(false), a backward pass,
// then every parameter's gradient must have the same bits in both passes. `run(on, backward)` wraps each pass
// (it must call backward()) so a test can check the feature's own counters around it. The feature is left on.
inline void check_same_gradients_either_way(
    const std::function<void(bool)>& set_feature,
    const std::function<void(bool, const std::function<void()>&)>& run = [](bool, const std::function<void()>& backward) {
        backward();
    }) {
    const int threads_before = get_num_threads();
    for (int threads : {1, 2}) {
        set_num_threads(threads);
        nn::GPTConfig gc;
        gc.vocab_size = 37;
        gc.block_size = 16;
        gc.n_layer = 2;
        gc.n_head = 2;
        gc.n_embd = 16;
        manual_seed(5);
        nn::GPT gpt(gc);
        const Tensor idx = randint(0, 37, {3, 9}), next_tokens = randint(0, 37, {3, 9});
        nn::ViTConfig vc;
        vc.n_layer = 2;
        vc.n_embd = 16;
        vc.n_head = 2;
        vc.mlp_hidden = 32;
        nn::ViT vit(vc);
        const Tensor images = rand({4, 1, 28, 28}), labels = randint(0, 10, {4});
        for (nn::Module* model : {static_cast<nn::Module*>(&gpt), static_cast<nn::Module*>(&vit)}) {
            std::vector<Tensor> with_feature;
            for (bool on : {true, false}) {
                set_feature(on);
                model->zero_grad();
                run(on, [&] { (model == &gpt ? gpt.loss(idx, next_tokens) : vit.loss(images, labels)).backward(); });
                std::size_t i = 0;
                for (const auto& [name, p] : model->named_parameters()) {
                    if (on) {
                        with_feature.push_back(p.grad());
                    } else {
                        CHECK_MESSAGE(same_bits(with_feature[i], p.grad()),
                                      model->name() << " " << name << " on " << threads << " threads");
                    }
                    ++i;
                }
            }
            set_feature(true);
        }
    }
    set_num_threads(threads_before);
}

}  // namespace tg::testing
