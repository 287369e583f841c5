#pragma once
// Shared by the three commands of tg-vit: class names, checkpoints, batching and evaluation.

#include <tapegrad/tapegrad.h>
#include "core/file_io.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vit {

// Fashion-MNIST's ten classes, in label order.
const std::vector<std::string>& class_names();

// A checkpoint folder: model.safetensors (weights) + config.json {"model": ViTConfig, "classes": [...],
// "training": {...}}. Both files are written atomically.
void save_checkpoint(const std::string& dir, const tg::nn::ViT& model, const std::string& training_json);
// Loading checks sizes before allocating (the parameter count of config.json against model.safetensors' size),
// refuses weights holding NaN/Inf, and reads "classes": one name per output of the model (their count must be
// the config's num_classes); `classes`, if given, receives them.
std::shared_ptr<tg::nn::ViT> load_checkpoint(const std::string& dir, std::vector<std::string>* classes = nullptr);

// Copies images[indices[i]] (N, H, W) into a batch (B, 1, H, W). With a generator, each image is also
// shifted by up to max_shift pixels in x and y (zeros come in at the edges) and, with flip, mirrored left-right
// with probability 1/2: the light augmentation of training.
tg::Tensor make_batch(const tg::Tensor& images, const std::int64_t* indices, std::int64_t count,
                      tg::Generator* augment = nullptr, std::int64_t max_shift = 1, bool flip = true);

// Predictions (N) int64 of the model on all `images` (N, H, W), in batches, without autograd.
tg::Tensor predict(tg::nn::ViT& model, const tg::Tensor& images, std::int64_t batch = 500);
// Softmax probabilities (N, classes).
tg::Tensor predict_proba(tg::nn::ViT& model, const tg::Tensor& images, std::int64_t batch = 500);
// Fraction of predictions equal to labels.
double accuracy(const tg::Tensor& predictions, const tg::Tensor& labels);

}  // namespace vit
