#include "common.h"

#include "nn/models/model_size.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace vit {

const std::vector<std::string>& class_names() {
    static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                   "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return names;
}

void save_checkpoint(const std::string& dir, const tg::nn::ViT& model, const std::string& training_json) {
    std::filesystem::create_directories(dir);
    tg::save_safetensors((std::filesystem::path(dir) / "model.safetensors").string(), model.state_dict(),
                         {{"format", "tapegrad-vit"}});
    nlohmann::ordered_json config;
    config["model"] = nlohmann::ordered_json::parse(model.config.to_json());
    config["classes"] = class_names();
    config["training"] = nlohmann::ordered_json::parse(training_json);
    const std::string text = config.dump(2) + "\n";
    tg::write_file_atomically((std::filesystem::path(dir) / "config.json").string(), text.data(), text.size(),
                              "tg-vit checkpoint");
}

std::shared_ptr<tg::nn::ViT> load_checkpoint(const std::string& dir, std::vector<std::string>* classes) {
    const std::string config_path = (std::filesystem::path(dir) / "config.json").string();
    std::ifstream in(config_path);
    if (!in) throw tg::IOError("cannot open " + config_path + " (is " + dir + " a checkpoint of tg-vit train?)");
    std::stringstream text;
    text << in.rdbuf();
    tg::nn::ViTConfig config;
    std::vector<std::string> names;
    try {
        const nlohmann::json j = nlohmann::json::parse(text.str());
        config = tg::nn::ViTConfig::from_json(j.at("model").dump());
        names = j.at("classes").get<std::vector<std::string>>();
    } catch (const nlohmann::json::exception& e) {
        throw tg::IOError(config_path + ": malformed config: " + e.what());
    } catch (const tg::ValueError& e) {
        throw tg::IOError(config_path + ": " + e.what());
    }
    if (static_cast<std::int64_t>(names.size()) != config.num_classes) {
        throw tg::IOError(config_path + ": \"classes\" names " + std::to_string(names.size()) +
                          " classes but the model has num_classes = " + std::to_string(config.num_classes));
    }
    // Sizes before allocations: the weights of the config, as float32, must be what model.safetensors holds.
    const std::string weights_path = (std::filesystem::path(dir) / "model.safetensors").string();
    std::error_code ec;
    const std::uintmax_t file_bytes = std::filesystem::file_size(weights_path, ec);
    const auto params = static_cast<std::uint64_t>(tg::nn::vit_parameter_count(config));
    if (!ec && (params > file_bytes / 4 || file_bytes - 4 * params > 100'000'008)) {
        throw tg::IOError(config_path + " describes a model of " + std::to_string(params) + " parameters, but " +
                          weights_path + " holds " + std::to_string(file_bytes) +
                          " bytes: the config and the weights do not belong together");
    }
    auto model = std::make_shared<tg::nn::ViT>(config);
    const tg::SafetensorsFile weights = tg::load_safetensors(weights_path);
    for (const auto& [name, t] : weights.tensors) {
        if (const auto bad = tg::find_non_finite(t)) {
            throw tg::IOError(weights_path + ": tensor '" + name + "' holds " + bad->text() +
                              ": the weights are damaged or come from a diverged run");
        }
    }
    model->load_state_dict(weights.tensors);
    if (classes) *classes = std::move(names);
    model->eval();
    return model;
}

tg::Tensor make_batch(const tg::Tensor& images, const std::int64_t* indices, std::int64_t count, tg::Generator* augment,
                      std::int64_t max_shift, bool flip_images) {
    const std::int64_t H = images.size(1), W = images.size(2), plane = H * W;
    tg::Tensor batch = tg::zeros({count, 1, H, W});
    const float* src = images.data<float>();
    float* dst = batch.data<float>();
    std::vector<std::int64_t> shifts, flips;
    if (augment) {
        shifts = tg::randint(-max_shift, max_shift + 1, {count, 2}, tg::kInt64, augment).to_vector<std::int64_t>();
        flips = tg::randint(0, 2, {count}, tg::kInt64, augment).to_vector<std::int64_t>();
    }
    for (std::int64_t b = 0; b < count; ++b) {
        const float* image = src + indices[b] * plane;
        float* out = dst + b * plane;
        if (!augment) {
            std::memcpy(out, image, sizeof(float) * plane);
            continue;
        }
        // out[y][x] = image[y − dy][x' − dx], x' = W−1−x when flipped; pixels from outside stay 0.
        const std::int64_t dy = shifts[2 * b], dx = shifts[2 * b + 1];
        const bool flip = flip_images && flips[b] != 0;
        for (std::int64_t y = 0; y < H; ++y) {
            const std::int64_t sy = y - dy;
            if (sy < 0 || sy >= H) continue;
            for (std::int64_t x = 0; x < W; ++x) {
                const std::int64_t xs = (flip ? W - 1 - x : x) - dx;
                if (xs >= 0 && xs < W) out[y * W + x] = image[sy * W + xs];
            }
        }
    }
    return batch;
}

tg::Tensor predict_proba(tg::nn::ViT& model, const tg::Tensor& images, std::int64_t batch) {
    tg::NoGradGuard no_grad;
    const bool was_training = model.is_training();
    model.eval();
    std::vector<tg::Tensor> parts;
    for (std::int64_t start = 0; start < images.size(0); start += batch) {
        const std::int64_t n = std::min(batch, images.size(0) - start);
        parts.push_back(tg::softmax(model.forward(images.narrow(0, start, n)), -1));
    }
    model.train(was_training);
    return tg::cat(parts, 0);
}

tg::Tensor predict(tg::nn::ViT& model, const tg::Tensor& images, std::int64_t batch) {
    return tg::argmax(predict_proba(model, images, batch), 1);
}

double accuracy(const tg::Tensor& predictions, const tg::Tensor& labels) {
    const auto p = predictions.to_vector<std::int64_t>();
    const auto l = labels.to_vector<std::int64_t>();
    std::int64_t correct = 0;
    for (std::size_t i = 0; i < p.size(); ++i) correct += p[i] == l[i];
    return p.empty() ? 0.0 : static_cast<double>(correct) / static_cast<double>(p.size());
}

}  // namespace vit
