// libFuzzer target: tg-attention's input file (examples/attention/inputs.h): a safetensors file that must hold
// q, k, v, do of matching shapes and dtypes, all finite. Accepted inputs small enough to run quickly are
// run through the attention node forward and backward, in every mode.
#include "examples/attention/inputs.h"

#include "nn/attention.h"
#include "nn/serialization.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace F = tg::nn::functional;
    try {
        const tg::SafetensorsFile file = tg::decode_safetensors(data, size, "fuzz");
        const std::vector<tg::Tensor> in = tg_attention::check_inputs(file);
        if (in[0].numel() + in[1].numel() + in[2].numel() > 4096) return 0;
        F::AttentionOptions options;
        options.mode = static_cast<F::AttentionMode>(size % 4);
        options.causal = (size & 4) != 0;
        tg::Tensor q = in[0].detach().requires_grad_(), k = in[1].detach().requires_grad_(),
                   v = in[2].detach().requires_grad_();
        tg::Tensor o = F::scaled_dot_product_attention(q, k, v, options);
        o.backward(in[3]);
    } catch (const tg::Error&) {
    }
    return 0;
}
