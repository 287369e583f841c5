// libFuzzer target: optimizer state as tg-gpt resumes it: a safetensors file (optimizer.safetensors) loaded into
// an AdamW over two parameters with every check on (Optimizer::load_state_dict, require_every_param).
#include "core/ops.h"
#include "nn/optim.h"
#include "nn/serialization.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static tg::Tensor p = tg::zeros({3}).requires_grad_();
    static tg::Tensor q = tg::zeros({2, 2}).requires_grad_();
    static tg::optim::AdamW optimizer({p, q}, 1e-3);
    try {
        const tg::SafetensorsFile file = tg::decode_safetensors(data, size, "fuzz");
        optimizer.load_state_dict(file.tensors, /*require_every_param=*/(size & 1) != 0);
        // A state that loads must be usable: one step with finite gradients stays finite.
        p.set_grad(tg::ones({3}));
        q.set_grad(tg::ones({2, 2}));
        optimizer.step();
        optimizer.zero_grad();
    } catch (const tg::Error&) {
    }
    return 0;
}
