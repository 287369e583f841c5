#pragma once
// Pictures of the backward graph: to_dot writes the tape behind a tensor as Graphviz DOT text.
//
//   Tensor x = tg::randn({2, 3}).requires_grad_().set_name("x");
//   Tensor w = tg::randn({3, 4}).requires_grad_().set_name("w");
//   Tensor loss = tg::sum(tg::relu(tg::matmul(x, w)));
//   tg::autograd::write_dot(loss, "graph.dot");   // then: dot -Tsvg graph.dot -o graph.svg
//
// draws
//
//   [x  [2, 3] float32]   [w  [3, 4] float32]      leaves (AccumulateGrad nodes): boxes with the tensor name
//            \                 /
//           (matmul  [2, 4] float32)               one ellipse per op: node name, output shape and dtype
//                    |
//           (relu    [2, 4] float32)
//                    |
//           (sum     [] float32)                   the root (drawn bold)
//
// Edges go from an input to the op that consumed it, the direction values flow in the forward pass;
// gradients flow against the arrows. A leaf without a name (Tensor::set_name) is labelled "leaf".
//
// With options.show_grad_norms, each node also shows ||dL/d output||_2 from the last backward pass. The
// engine records those only while autograd::set_track_grad_norms(true) is on (core/node.h):
//
//   tg::autograd::set_track_grad_norms(true);
//   loss.backward();
//   tg::autograd::write_dot(loss, "grads.dot", {.show_grad_norms = true});
//
// The output is deterministic: nodes are numbered n0, n1, ... in depth-first order from the root, inputs
// in order, so the same graph always gives the same text (handy for tests and diffs).

#include "core/tensor.h"

#include <string>

namespace tg::autograd {

struct DotOptions {
    bool show_grad_norms = false;  // add "|grad| = ..." to nodes visited by a backward with norm tracking on
    bool show_shapes = true;       // add "[shape] dtype" under each node name
};

// The DOT text of the graph reachable from root.grad_fn() (or root's own leaf node, if root is a leaf that
// requires grad). Throws ValueError if root is undefined or does not require grad (it has no graph).
std::string to_dot(const Tensor& root, const DotOptions& options = {});

// Writes to_dot(root, options) to `path` atomically (core/file_io.h); throws IOError on failure.
void write_dot(const Tensor& root, const std::string& path, const DotOptions& options = {});

}  // namespace tg::autograd
