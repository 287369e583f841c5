// The snippets of docs/vit.md: images in, patches, a ViT forward pass, attention maps, images out.
// Built and run by `meson test` (doc-vit-tour); the output quoted in the page is what this prints.

#include <tapegrad/tapegrad.h>

#include <cmath>
#include <filesystem>
#include <iostream>

int main() {
    tg::manual_seed(0);

    // --- 1. Fashion-MNIST from the IDX files (gzip), validated on the way in ----------------------------------
    if (std::filesystem::exists(tg::data::kFashionMnistDir)) {
        tg::data::ImageDataset test = tg::data::load_mnist(tg::data::kFashionMnistDir, "t10k");
        std::cout << "images " << test.images.describe() << ", labels " << test.labels.describe() << "\n";
        std::cout << "first label: " << test.labels.data<std::int64_t>()[0] << "\n";  // 9 = ankle boot
    }

    // --- 2. patchify: a view + permute + one copy, no convolution -----------------------------------------------
    tg::nn::ViTConfig config;  // 28×28×1, patch 7, E = 64, 4 layers, 4 heads, MLP 128, class-token pooling
    tg::nn::ViT model(config);
    std::cout << "parameters: " << model.num_parameters() << "\n";
    tg::Tensor images = tg::rand({2, 1, 28, 28});       // (B, C, H, W) in [0, 1]
    tg::Tensor patches = model.patchify(images);         // (B, N, C·P·P)
    std::cout << "patches " << tg::to_string(patches.shape()) << "\n";

    // --- 3. forward, loss, backward -------------------------------------------------------------------------------
    tg::Tensor logits = model.forward(images);           // (B, 10)
    tg::Tensor loss = tg::nn::functional::cross_entropy(logits, tg::from_vector(std::vector<std::int64_t>{3, 9}));
    loss.backward();
    std::cout << "logits " << tg::to_string(logits.shape()) << ", loss " << loss.item() << " (log 10 = 2.303)\n";
    std::cout << "grad of blocks.0.attn.qkv.weight " << tg::to_string(model.blocks[0]->attn->qkv->weight.grad().shape())
              << "\n";

    // --- 4. attention maps: softmax(s·q kᵀ) of every head, recomputed for pictures ---------------------------------
    std::vector<tg::Tensor> maps = model.attention_maps(images);  // per block (B, H, T, T)
    std::cout << maps.size() << " maps of " << tg::to_string(maps[0].shape()) << "; row 0 = the class token\n";

    // --- 5. images out and in: PNG via stb_image_write / stb_image ---------------------------------------------------
    const std::string path = (std::filesystem::temp_directory_path() / "tg-vit-tour.png").string();
    tg::Tensor ramp = tg::arange(0.0, 1.0, 1.0 / 64).reshape({1, 8, 8});  // (C, H, W) gray ramp
    tg::data::save_png(path, ramp);                                       // written atomically
    tg::Tensor back = tg::data::load_image(path, 3);                      // (3, 8, 8): gray → RGB
    tg::Tensor gray = tg::data::to_grayscale(back);                       // (1, 8, 8)
    tg::Tensor small = tg::data::resize(gray, 4, 4);                      // antialiased bilinear
    std::cout << "loaded " << tg::to_string(back.shape()) << " -> gray " << tg::to_string(gray.shape())
              << " -> resized " << tg::to_string(small.shape()) << "\n";
    std::filesystem::remove(path);
    // The shapes and the loss the page quotes: a fresh 10-class head guesses near-uniformly, so loss ≈ log 10.
    const bool ok = patches.shape() == tg::Shape{2, 16, 49} && logits.shape() == tg::Shape{2, 10} &&
                    std::abs(loss.item() - std::log(10.0)) < 0.5 && small.shape() == tg::Shape{1, 4, 4};
    return ok ? 0 : 1;
}
