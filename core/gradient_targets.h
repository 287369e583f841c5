#pragma once
// Gradient targets: buffers a backward rule may add an input's gradient into, instead of returning it.
//
// Where two paths' gradients meet at one tensor, the engine sums them (core/gradient_sum.h): in a transformer
// block, x feeds both a LayerNorm and the residual connection, so x's gradient is the residual stream's
// gradient r plus the LayerNorm's dx. Returned as a tensor, dx is written in one pass over memory and added
// to r in a second (read dx, read r, write): at GPT config S that second pass was about half of the engine's
// time on two threads. With a target, the engine hands the rule r's buffer, and the rule's kernel adds dx into
// it as it computes it (kernels/layernorm.h, accumulate_dx): one pass.
//
// The engine offers input i's running sum when the rule's node asks for targets (record_with_targets in
// core/node.h) and the sum is a single dense buffer of the input's shape and dtype, contiguous, that nothing
// else can see (core/node.h: is_sole_owner); otherwise target(i) is undefined and the rule returns its
// gradient as usual. A rule that adds into target(i) calls mark_added(i) and returns no gradient for input i.
//
// Summation order is unchanged: the rule adds its gradient last into the sum of those that arrived before,
// as the engine would have (a + b and b + a round the same), so gradients are the same bit for bit with
// targets on or off. Off (set_gradient_targets(false)) the engine offers nothing: for tests that compare.

#include "core/tensor.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tg::autograd {

class GradientTargets {
public:
    GradientTargets() = default;
    explicit GradientTargets(std::size_t inputs) : targets_(inputs), added_(inputs, false) {}

    // The buffer holding the sum of the gradients that already reached input i, or an undefined tensor.
    Tensor target(std::size_t i) const { return i < targets_.size() ? targets_[i] : Tensor(); }
    // The rule has added its gradient for input i into target(i); the engine then expects none returned.
    void mark_added(std::size_t i) { added_.at(i) = true; }
    bool added(std::size_t i) const { return i < added_.size() && added_[i]; }

    // The engine's side: offers `sum` as input i's target.
    void offer(std::size_t i, Tensor sum) { targets_.at(i) = std::move(sum); }
    // After the rule: drops the handles (added() still answers).
    void release_buffers() { targets_.clear(); }

private:
    std::vector<Tensor> targets_;
    std::vector<bool> added_;
};

// On by default; off, the engine offers no targets (every rule returns its gradients).
void set_gradient_targets(bool enabled);
bool gradient_targets_enabled();
// How many gradients rules have added into targets in this process (tests check a path was taken).
std::uint64_t gradient_targets_taken();

}  // namespace tg::autograd
