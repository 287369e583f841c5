// The C API's training: an AdamW optimizer over a GPT's parameters, one step on a batch of token windows,
// and saving the model (with the optimizer's state) as a checkpoint folder tg-gpt reads.

#include "capi/boundary.h"
#include "capi/gpt_handle.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

namespace tg::capi {

namespace {

tg_gpt& model_of(tg_gpt* model) {
    require(model, "model");
    return *model;
}

tg_optimizer& optimizer_of(tg_optimizer* optimizer) {
    require(optimizer, "optimizer");
    return *optimizer;
}

void check_finite_nonnegative(double v, const char* name) {
    if (!(v >= 0.0) || !std::isfinite(v)) {
        throw InvalidArgument(std::string(name) + " must be a finite number >= 0, got " + std::to_string(v));
    }
}

// Appends [step, loss, null] to the history (a JSON array text) that tg-gpt plots and resumes from.
void append_history(std::string& history, std::int64_t step, double loss) {
    nlohmann::json h = nlohmann::json::parse(history);
    h.push_back({step, std::isfinite(loss) ? nlohmann::json(loss) : nlohmann::json(nullptr), nullptr});
    history = h.dump();
}

}  // namespace

}  // namespace tg::capi

using namespace tg::capi;
using tg::ShapeError;

extern "C" {

tg_status tg_adamw_options_init(tg_adamw_options* options) {
    return init_options(options, "tg_adamw_options_init", [](tg_adamw_options& o) {
        o.lr = 3e-4;
        o.beta1 = 0.9;
        o.beta2 = 0.999;
        o.eps = 1e-8;
        o.weight_decay = 0.0;
        o.grad_clip = 1.0;
    });
}

tg_status tg_adamw_create(tg_context* ctx, tg_gpt* model, const tg_adamw_options* options, tg_optimizer** out) {
    return call(ctx, "tg_adamw_create", [&] {
        tg_gpt& m = model_of(model);
        require(out, "out");
        const tg_adamw_options o = read_options(options, tg_adamw_options_init, "options");
        check_finite_nonnegative(o.grad_clip, "options->grad_clip");
        auto handle = std::make_unique<tg_optimizer>();
        handle->adamw = std::make_unique<tg::optim::AdamW>(m.model->parameters(), o.lr, o.beta1, o.beta2, o.eps,
                                                           o.weight_decay);
        handle->model = &m;
        handle->grad_clip = o.grad_clip;
        // A model loaded from a checkpoint with an optimizer state resumes it (moments, step counts, history).
        if (!m.dir.empty() && std::filesystem::exists(std::filesystem::path(m.dir) / "optimizer.safetensors")) {
            m.state = tg::nn::load_gpt_training_state(m.dir, *handle->adamw, m.state.step);
            handle->adamw->set_lr(o.lr);  // the caller's learning rate, not the one saved
            log(ctx, TG_LOG_INFO, "resumed the optimizer state of " + m.dir + " at step " + std::to_string(m.state.step));
        }
        *out = handle.release();
    });
}

tg_status tg_optimizer_free(tg_optimizer* optimizer) {
    delete optimizer;
    return TG_OK;
}

tg_status tg_optimizer_set_lr(tg_context* ctx, tg_optimizer* optimizer, double lr) {
    return call(ctx, "tg_optimizer_set_lr", [&] {
        tg_optimizer& opt = optimizer_of(optimizer);
        check_finite_nonnegative(lr, "lr");
        opt.adamw->set_lr(lr);
    });
}

tg_status tg_gpt_train_step(tg_context* ctx, tg_gpt* model, tg_optimizer* optimizer, const int64_t* tokens,
                            int64_t B, int64_t T, float* loss) {
    return call(ctx, "tg_gpt_train_step", [&] {
        tg_gpt& m = model_of(model);
        tg_optimizer& opt = optimizer_of(optimizer);
        if (opt.model != &m) throw InvalidArgument("the optimizer was made for another model");
        require(tokens, "tokens");
        if (B < 1 || T < 1) {
            throw ShapeError("B and T must be >= 1, got B = " + std::to_string(B) + ", T = " + std::to_string(T));
        }
        // Windows of T + 1 ids: x = the first T, y = the last T (each position predicts the next id).
        const tg::Tensor windows = tg::from_data(tokens, tg::Shape{B, T + 1});
        const tg::Tensor x = windows.narrow(1, 0, T).contiguous();
        const tg::Tensor y = windows.narrow(1, 1, T).contiguous();

        m.model->train();
        opt.adamw->zero_grad();
        const tg::Tensor l = m.model->loss(x, y);  // forward checks T <= block_size and every id of x
        const double value = l.item();
        if (!std::isfinite(value)) {
            throw tg::ValueError("the loss is " + std::to_string(value) + ": training diverged (lower the learning "
                                 "rate); the model was not updated");
        }
        l.backward();
        if (opt.grad_clip > 0.0) tg::optim::clip_grad_norm_(m.model->parameters(), opt.grad_clip);
        opt.adamw->step();
        m.state.step += 1;
        append_history(m.state.history, m.state.step, value);
        if (loss != nullptr) *loss = static_cast<float>(value);
    });
}

tg_status tg_gpt_save(tg_context* ctx, const tg_gpt* model, const tg_optimizer* optimizer, const char* dir) {
    return call(ctx, "tg_gpt_save", [&] {
        require(model, "model");
        require(dir, "dir");
        if (optimizer != nullptr && optimizer->model != model) {
            throw InvalidArgument("the optimizer was made for another model");
        }
        const tg_gpt& m = *model;
        tg::nn::GPTCheckpointState state = m.state;
        state.global_rng = ctx->generator.get_state();  // the context's generator plays tg-gpt's global one
        const tg::nn::GPTCheckpointConfig config{m.model->config, m.tokenizer, m.training};
        if (optimizer != nullptr) {
            tg::nn::save_gpt_checkpoint(dir, *m.model, *optimizer->adamw, config, state);
        } else {
            // A fresh optimizer state (nothing to resume): the folder is still complete.
            const tg::optim::AdamW fresh(m.model->parameters());
            tg::nn::save_gpt_checkpoint(dir, *m.model, fresh, config, state);
        }
    });
}

}  // extern "C"
