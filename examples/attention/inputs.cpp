// tg-attention's input file, checked: see inputs.h.

#include "inputs.h"

#include "core/error.h"
#include "core/finite.h"

namespace tg_attention {

std::vector<tg::Tensor> check_inputs(const tg::SafetensorsFile& file) {
    const std::string& path = file.origin;
    std::vector<tg::Tensor> inputs;
    for (const char* name : {"q", "k", "v", "do"}) inputs.push_back(file.get(name));
    const tg::DType dtype = inputs[0].dtype();
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const tg::Tensor& t = inputs[i];
        const char* name = i == 0 ? "q" : i == 1 ? "k" : i == 2 ? "v" : "do";
        if (t.dtype() != tg::kFloat32 && t.dtype() != tg::kFloat64) {
            throw tg::DTypeError("tg-attention: " + path + ": tensor '" + name + "' must be F32 or F64, got " +
                                 tg::dtype_name(t.dtype()));
        }
        if (t.dtype() != dtype) {
            throw tg::DTypeError("tg-attention: " + path + ": q, k, v, do must have the same dtype; '" + name +
                                 "' is " + tg::dtype_name(t.dtype()) + ", q is " + tg::dtype_name(dtype));
        }
    }
    for (std::size_t i = 0; i < inputs.size(); ++i) {  // NaN/Inf in would be NaN out: refuse, naming where
        if (const auto bad = tg::find_non_finite(inputs[i])) {
            throw tg::ValueError("tg-attention: " + path + ": tensor '" + std::string(i == 0 ? "q" : i == 1 ? "k" : i == 2 ? "v" : "do") +
                                 "' holds " + bad->text());
        }
    }
    const tg::Tensor &q = inputs[0], &v = inputs[2], &dout = inputs[3];
    if (q.dim() == 4 && v.dim() == 4 &&
        (dout.dim() != 4 || dout.size(0) != q.size(0) || dout.size(1) != q.size(1) || dout.size(2) != q.size(2) ||
         dout.size(3) != v.size(3))) {
        throw tg::ShapeError("tg-attention: " + path + ": do must have shape [B, H, Tq, Dv] = [" +
                             std::to_string(q.size(0)) + ", " + std::to_string(q.size(1)) + ", " +
                             std::to_string(q.size(2)) + ", " + std::to_string(v.size(3)) + "], got " +
                             tg::to_string(dout.shape()));
    }
    return inputs;
}

}  // namespace tg_attention
