// Chapter 7, attention forward/backward and the online softmax (docs/course/07-attention.md).
// The plain references are the exercises; the tiled (flash) kernels of kernels/attention_exact.cpp are the
// independent check, on odd sizes, with and without the causal mask.

#include "kernels/attention_exact.h"
#include "tests/course/course_test.h"

#include <limits>

using namespace tg;
using tg::course::attempt;
using tg::course::check_close;
using tg::course::random_values;

namespace {

struct Problem {
    kernels::AttentionProblem p;
    std::vector<double> q, k, v, dout;
    kernels::AttentionLayout ql, kl, vl, ol;
};

Problem make_problem(bool causal, unsigned seed) {
    Problem t;
    t.p.batch = 2;
    t.p.heads = 1;
    t.p.tq = t.p.tk = 5;
    t.p.d = 3;
    t.p.dv = 2;
    t.p.causal = causal;
    t.p.scale = 1.0 / std::sqrt(3.0);
    t.q = random_values(static_cast<std::size_t>(2 * 5 * 3), seed);
    t.k = random_values(static_cast<std::size_t>(2 * 5 * 3), seed + 1);
    t.v = random_values(static_cast<std::size_t>(2 * 5 * 2), seed + 2);
    t.dout = random_values(static_cast<std::size_t>(2 * 5 * 2), seed + 3);
    t.ql = t.kl = kernels::contiguous_layout(t.p, 5, 3);
    t.vl = t.ol = kernels::contiguous_layout(t.p, 5, 2);
    return t;
}

}  // namespace

TEST_SUITE("course-ch7") {

TEST_CASE("ch7.attention_forward") {
    attempt([] {
        for (bool causal : {false, true}) {
            INFO("causal = " << causal);
            Problem t = make_problem(causal, 30);
            std::vector<double> o_ref(t.dout.size()), o_fast(t.dout.size()), lse_ref(10), lse_fast(10);
            kernels::attention_forward(t.p, t.q.data(), t.ql, t.k.data(), t.kl, t.v.data(), t.vl, o_fast.data(),
                                       t.ol, lse_fast.data());
            kernels::attention_forward_reference(t.p, t.q.data(), t.ql, t.k.data(), t.kl, t.v.data(), t.vl,
                                                 o_ref.data(), t.ol, lse_ref.data());
            check_close("O", o_ref, o_fast, 1e-10);
            check_close("lse (log Σ_j exp S_ij)", lse_ref, lse_fast, 1e-10);
        }
    });
}

TEST_CASE("ch7.attention_backward") {
    attempt([] {
        for (bool causal : {false, true}) {
            INFO("causal = " << causal);
            Problem t = make_problem(causal, 40);
            std::vector<double> o(t.dout.size()), lse(10);
            kernels::attention_forward(t.p, t.q.data(), t.ql, t.k.data(), t.kl, t.v.data(), t.vl, o.data(), t.ol,
                                       lse.data());
            std::vector<double> dq_ref(t.q.size()), dk_ref(t.k.size()), dv_ref(t.v.size());
            std::vector<double> dq(t.q.size()), dk(t.k.size()), dv(t.v.size());
            std::vector<double> workspace(
                static_cast<std::size_t>(kernels::attention_backward_workspace(t.p, sizeof(double))));
            kernels::attention_backward(t.p, t.q.data(), t.ql, t.k.data(), t.kl, t.v.data(), t.vl, o.data(), t.ol,
                                        lse.data(), t.dout.data(), t.ol, dq.data(), t.ql, dk.data(), t.kl, dv.data(),
                                        t.vl, workspace.data());
            kernels::attention_backward_reference(t.p, t.q.data(), t.ql, t.k.data(), t.kl, t.v.data(), t.vl,
                                                  o.data(), t.ol, lse.data(), t.dout.data(), t.ol, dq_ref.data(),
                                                  t.ql, dk_ref.data(), t.kl, dv_ref.data(), t.vl);
            check_close("dQ", dq_ref, dq, 1e-10);
            check_close("dK", dk_ref, dk, 1e-10);
            check_close("dV", dv_ref, dv, 1e-10);
        }
    });
}

}  // TEST_SUITE
