// tg-attention: run the attention node on tensors from a file, so anyone can check tapegrad's exact and
// approximate attention (and their gradients) against their own code, e.g. from Python with
// safetensors + numpy/torch:
//
//   tg-attention --in in.safetensors --out out.safetensors --mode approx_backward --degree 2 --causal
//   tg-attention ... --mode approx --causal --window 64 --sinks 4     (near-exact / far-polynomial)
//
// in:  q, k [B, H, T, D], v [B, H, Tk, Dv], do [B, H, Tq, Dv] (F32 or F64, all the same dtype)
// out: o, dq, dk, dv in that dtype: o = attention(q, k, v) and the gradients of Σ o∘do.
// Bad files, missing tensors or mismatched shapes: a message on stderr and exit status 2; the output is
// written atomically (save_safetensors), so it is never left half-written. Other failures: exit status 1.
// --threads and --json mean what they mean in every tapegrad program (examples/common/cli.h).

#include "inputs.h"
#include "memory.h"

#include "core/error.h"
#include "core/tensor.h"
#include "nn/attention.h"
#include "nn/serialization.h"

#include "examples/common/cli.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <string>

namespace F = tg::nn::functional;

namespace {

struct Options {
    std::string in, out, mode = "exact", grad = "consistent";
    int degree = 2;
    bool causal = false;
    double scale = std::nan("");
    std::int64_t chunk = 64;
    std::int64_t window = 0, sinks = 0;
    int threads = 0;
    bool json = false;
};

// Reads and checks the four inputs (inputs.h); throws tg::Error (reported with exit status 2) on any problem.
std::vector<tg::Tensor> read_inputs(const std::string& path) { return tg_attention::check_inputs(tg::load_safetensors(path)); }

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    CLI::App app{"tg-attention: exact or approximate attention and its gradients on tensors from a safetensors file"};
    app.add_option("--in", opt.in, "input safetensors with q, k, v, do [B, H, T, D]")->required();
    tg::cli::add_out(app, opt.out, "output safetensors with o, dq, dk, dv")->required();
    app.add_option("--mode", opt.mode, "exact | approx_backward | approx | auto")
        ->check(CLI::IsMember({"exact", "approx_backward", "approx", "auto"}));
    app.add_option("--degree", opt.degree, "polynomial degree of the approximate modes (1..4)");
    app.add_option("--grad", opt.grad, "approx_backward gradient formula: consistent | plugin")
        ->check(CLI::IsMember({"consistent", "plugin"}));
    app.add_flag("--causal", opt.causal, "query i sees keys j <= i");
    app.add_option("--scale", opt.scale, "score scale s (default 1/sqrt(D))");
    app.add_option("--chunk", opt.chunk, "causal chunk length of the polynomial kernels");
    app.add_option("--window", opt.window, "approximate modes, causal: the last W keys of each row exactly (0: none)");
    app.add_option("--sinks", opt.sinks, "approximate modes, causal: the first S keys exactly (0: none)");
    tg::cli::add_threads(app, opt.threads);
    tg::cli::add_json(app, opt.json, "{\"out\", \"mode\", \"shape\", \"dtype\"} once written");
    if (const int status = tg::cli::parse(app, argc, argv); status >= 0) return status;

    return tg::cli::run_main("tg-attention", [&] {
        tg::cli::apply_threads(opt.threads);
        F::AttentionOptions options;
        options.mode = F::attention_mode_from_string(opt.mode);
        options.gradient = F::attention_gradient_from_string(opt.grad);
        options.degree = opt.degree;
        options.causal = opt.causal;
        options.chunk = opt.chunk;
        options.window = opt.window;
        options.sinks = opt.sinks;
        if (!std::isnan(opt.scale)) options.scale = opt.scale;
        // Sizes first (the header alone), so inputs the machine cannot run are refused before anything is read.
        tg::cli::require_memory("tg-attention", tg_attention::attention_memory(tg::read_safetensors_header(opt.in), options),
                                "use fewer heads, shorter sequences or (approximate modes) a smaller --degree or head dimension");
        const std::vector<tg::Tensor> in = read_inputs(opt.in);
        F::check_attention_window("", options, in[0].size(2));

        tg::Tensor q = in[0].detach().requires_grad_(), k = in[1].detach().requires_grad_(),
                   v = in[2].detach().requires_grad_();
        tg::Tensor o = F::scaled_dot_product_attention(q, k, v, options);
        o.backward(in[3]);
        tg::save_safetensors(opt.out, {{"o", o.detach()}, {"dq", q.grad()}, {"dk", k.grad()}, {"dv", v.grad()}},
                             {{"mode", opt.mode}, {"degree", std::to_string(opt.degree)}, {"grad", opt.grad},
                              {"causal", opt.causal ? "true" : "false"}, {"window", std::to_string(opt.window)},
                              {"sinks", std::to_string(opt.sinks)}});
        if (opt.json) {
            const nlohmann::ordered_json line = {{"out", opt.out}, {"mode", opt.mode}, {"shape", q.shape()},
                                                 {"dtype", tg::dtype_name(q.dtype())}};
            std::printf("%s\n", line.dump().c_str());
        }
        return static_cast<int>(tg::cli::kExitOk);
    });
}
