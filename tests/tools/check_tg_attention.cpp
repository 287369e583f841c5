// Checks the tg-attention program end to end (meson test 'tg-attention', suite 'tools'): it writes input files,
// runs the program given as argv[1], and compares its output with the library called in-process; bad inputs
// must give exit status 2, a message on stderr, and leave an existing output file untouched; sizes whose memory
// the machine cannot give are refused from the file's header, before the inputs are read.

#include "core/ops.h"
#include "core/random.h"
#include "core/tensor.h"
#include "nn/attention.h"
#include "nn/serialization.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>

namespace F = tg::nn::functional;

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
    std::cout << (ok ? "ok    " : "FAIL  ") << what << '\n';
    if (!ok) ++failures;
}

struct Run {
    int status = -1;
    std::string err;
};

Run run(const std::string& program, const std::string& args, const std::string& dir) {
    const std::string err_path = dir + "/stderr.txt";
    const std::string cmd = "'" + program + "' " + args + " 2> '" + err_path + "'";
    const int raw = std::system(cmd.c_str());
    Run r;
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    std::ifstream in(err_path);
    std::stringstream ss;
    ss << in.rdbuf();
    r.err = ss.str();
    return r;
}

double max_abs_diff(const tg::Tensor& a, const tg::Tensor& b) {
    if (a.shape() != b.shape()) return HUGE_VAL;
    const auto x = a.to_vector<double>(), y = b.to_vector<double>();
    double m = 0;
    for (std::size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
    return m;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A valid safetensors file of F32 zeros q, k, v, do of `shape`, written sparse: the header, then a hole.
void write_sparse_inputs(const std::string& path, const tg::Shape& shape) {
    std::int64_t bytes = 4;
    for (const std::int64_t d : shape) bytes *= d;
    std::string header = "{";
    std::int64_t at = 0;
    for (const char* name : {"q", "k", "v", "do"}) {
        header += std::string(at == 0 ? "" : ",") + "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":" +
                  tg::to_string(shape) + ",\"data_offsets\":[" + std::to_string(at) + "," + std::to_string(at + bytes) + "]}";
        at += bytes;
    }
    header += "}";
    header.append((8 - header.size() % 8) % 8, ' ');
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    const std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xFF));
    out << header;
    out.close();
    std::filesystem::resize_file(path, 8 + n + static_cast<std::uint64_t>(at));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: check_tg_attention PATH/TO/tg-attention WORKDIR\n";
        return 2;
    }
    const std::string program = argv[1], dir = argv[2];
    std::system(("mkdir -p '" + dir + "'").c_str());
    tg::Generator gen(5);
    const tg::Shape shape{2, 3, 70, 8};
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
        const tg::Tensor q = tg::randn(shape, dtype, &gen) * 0.3, k = tg::randn(shape, dtype, &gen) * 0.3,
                         v = tg::randn(shape, dtype, &gen), dout = tg::randn(shape, dtype, &gen);
        const std::string in = dir + "/in.safetensors", out = dir + "/out.safetensors";
        tg::save_safetensors(in, {{"q", q}, {"k", k}, {"v", v}, {"do", dout}});
        struct Setting {
            std::string mode;
            std::int64_t window, sinks;  // near-exact / far-polynomial split (0, 0: none)
        };
        for (const Setting& setting : {Setting{"exact", 0, 0}, Setting{"approx_backward", 0, 0}, Setting{"approx", 0, 0},
                                       Setting{"approx_backward", 9, 2}, Setting{"approx", 9, 2}}) {
            const std::string& mode = setting.mode;
            const std::string split = " --window " + std::to_string(setting.window) + " --sinks " +
                                      std::to_string(setting.sinks);
            const std::string label = mode + split + " " + tg::dtype_name(dtype);
            const Run r = run(program, "--in '" + in + "' --out '" + out + "' --mode " + mode + " --causal --degree 2" +
                                           split, dir);
            expect(r.status == 0, label + ": exit status 0 (" + r.err + ")");
            if (r.status != 0) continue;
            // The same computation in-process.
            F::AttentionOptions options;
            options.mode = F::attention_mode_from_string(mode);
            options.causal = true;
            options.window = setting.window;
            options.sinks = setting.sinks;
            tg::Tensor lq = q.detach().requires_grad_(), lk = k.detach().requires_grad_(), lv = v.detach().requires_grad_();
            tg::Tensor o = F::scaled_dot_product_attention(lq, lk, lv, options);
            o.backward(dout);
            const tg::SafetensorsFile f = tg::load_safetensors(out);
            expect(f.get("o").dtype() == dtype, label + ": output dtype is the input dtype");
            const double d = std::max({max_abs_diff(f.get("o"), o), max_abs_diff(f.get("dq"), lq.grad()),
                                       max_abs_diff(f.get("dk"), lk.grad()), max_abs_diff(f.get("dv"), lv.grad())});
            expect(d == 0.0, label + ": o, dq, dk, dv equal the library's (max diff " + std::to_string(d) + ")");
        }

        // Bad inputs: exit status 2, a message naming the problem, the existing output untouched.
        const std::string before = read_file(out);
        const std::string missing = dir + "/missing_do.safetensors";
        tg::save_safetensors(missing, {{"q", q}, {"k", k}, {"v", v}});
        Run r = run(program, "--in '" + missing + "' --out '" + out + "'", dir);
        expect(r.status == 2 && r.err.find("do") != std::string::npos, "missing tensor 'do': status 2, named");
        const std::string mismatched = dir + "/mismatch.safetensors";
        tg::save_safetensors(mismatched, {{"q", q}, {"k", k.narrow(3, 0, 4)}, {"v", v}, {"do", dout}});
        r = run(program, "--in '" + mismatched + "' --out '" + out + "'", dir);
        expect(r.status == 2 && r.err.find("[2, 3, 70, 4]") != std::string::npos, "mismatched D: status 2, shapes named");
        const std::string mixed = dir + "/mixed.safetensors";
        tg::save_safetensors(mixed, {{"q", q.to(tg::kFloat32)}, {"k", k.to(tg::kFloat64)}, {"v", v}, {"do", dout}});
        r = run(program, "--in '" + mixed + "' --out '" + out + "'", dir);
        expect(r.status == 2 && r.err.find("same dtype") != std::string::npos, "mixed dtypes: status 2");
        const std::string garbage = dir + "/garbage.safetensors";
        std::ofstream(garbage) << "this is not a safetensors file";
        r = run(program, "--in '" + garbage + "' --out '" + out + "'", dir);
        expect(r.status == 2 && r.err.find("safetensors") != std::string::npos, "garbage file: status 2");
        r = run(program, "--in '" + dir + "/nope.safetensors' --out '" + out + "'", dir);
        expect(r.status == 2, "missing file: status 2");
        r = run(program, "--in '" + dir + "/in.safetensors" + "' --out '" + out + "' --mode fast", dir);
        expect(r.status == 2, "unknown mode: status 2");
        r = run(program, "--in '" + in + "' --out '" + out + "' --mode exact --causal --window 4", dir);
        expect(r.status == 2 && r.err.find("--window 4") != std::string::npos, "--window with exact: status 2, named");
        r = run(program, "--in '" + in + "' --out '" + out + "' --mode approx --causal --window 71", dir);
        expect(r.status == 2 && r.err.find("sequence length 70") != std::string::npos, "--window > T: status 2, named");
        r = run(program, "--in '" + in + "' --out '" + out + "' --mode approx --window 4", dir);
        expect(r.status == 2 && r.err.find("causal") != std::string::npos, "--window without --causal: status 2");
        expect(read_file(out) == before, "the previous output file is untouched by the failed runs");
    }
    {
        // [1, 1, 2^20, 32] inputs (a sparse 512 MiB file) with --degree 4 and one chunk for the whole sequence:
        // the polynomial workspace alone would be hundreds of GB. Refused from the header, in little memory.
        const std::string huge = dir + "/huge.safetensors", out = dir + "/huge-out.safetensors";
        write_sparse_inputs(huge, {1, 1, 1 << 20, 32});
        const Run r = run(program, "--in '" + huge + "' --out '" + out + "' --mode approx --degree 4 --chunk 1048576", dir);
        rusage usage{};
        getrusage(RUSAGE_CHILDREN, &usage);  // the largest resident set of any run so far, in KiB
        expect(r.status == 2 && r.err.find("needs at least") != std::string::npos &&
                   r.err.find("workspace") != std::string::npos,
               "inputs whose workspace exceeds the machine: status 2, the memory named (" + r.err.substr(0, 200) + ")");
        expect(usage.ru_maxrss < 200 * 1024, "refused before the inputs are read (max RSS " +
                                                 std::to_string(usage.ru_maxrss / 1024) + " MB)");
        std::filesystem::remove(huge);
    }
    std::cout << (failures == 0 ? "all passed\n" : std::to_string(failures) + " failed\n");
    return failures == 0 ? 0 : 1;
}
