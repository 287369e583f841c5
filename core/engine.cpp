// The backward pass: walk the tape from the output to the leaves in reverse topological order, calling each
// node's backward rule once with the sum of the gradients flowing into it.

#include "core/anomaly.h"
#include "core/gradient_sum.h"
#include "core/grad_mode.h"
#include "core/node.h"
#include "core/ops.h"
#include "core/profiler.h"

#include <atomic>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

namespace tg::autograd {

namespace {

// Nodes reachable from `root`, each listed after every node that feeds gradient into it.
std::vector<Node*> topological_order(Node* root) {
    std::vector<Node*> order;  // post-order: inputs before the nodes that consume them
    std::unordered_set<Node*> visited;
    // Iterative depth-first search: deep graphs (long training unrolls) must not overflow the C++ stack.
    std::vector<std::pair<Node*, std::size_t>> stack{{root, 0}};
    visited.insert(root);
    while (!stack.empty()) {
        auto& [node, next_input] = stack.back();
        if (next_input < node->inputs.size()) {
            Node* child = node->inputs[next_input++].node.get();
            if (child && visited.insert(child).second) stack.push_back({child, 0});
        } else {
            order.push_back(node);
            stack.pop_back();
        }
    }
    return {order.rbegin(), order.rend()};  // root first
}

double l2_norm(const Tensor& t) {
    return std::sqrt(sum(square(t.to(kFloat64))).item<double>());
}

std::atomic<bool> g_track_grad_norms{false};
std::atomic<bool> g_gradient_targets{true};
std::atomic<std::uint64_t> g_gradient_targets_taken{0};

// For each input of `node` whose running sum a rule may add into (core/gradient_targets.h). Not for an input
// node that appears twice among the inputs (both would be offered one buffer), and not under anomaly detection,
// which checks each returned gradient on its own.
GradientTargets offer_targets(const Node& node, std::unordered_map<Node*, GradientSum>& pending) {
    GradientTargets targets(node.inputs.size());
    if (!gradient_targets_enabled() || is_anomaly_enabled()) return targets;
    for (std::size_t i = 0; i < node.inputs.size(); ++i) {
        Node* input = node.inputs[i].node.get();
        if (!input) continue;
        bool repeated = false;
        for (std::size_t j = 0; j < node.inputs.size(); ++j) {
            repeated = repeated || (j != i && node.inputs[j].node.get() == input);
        }
        if (repeated) continue;
        auto it = pending.find(input);
        if (it != pending.end()) targets.offer(i, it->second.writable_sum());
    }
    return targets;
}

}  // namespace

void set_gradient_targets(bool enabled) { g_gradient_targets = enabled; }
bool gradient_targets_enabled() { return g_gradient_targets; }
std::uint64_t gradient_targets_taken() { return g_gradient_targets_taken; }

void set_track_grad_norms(bool track) { g_track_grad_norms = track; }
bool tracking_grad_norms() { return g_track_grad_norms; }

void run_backward(const Tensor& root, const Tensor& grad_output, bool retain_graph) {
    if (!root.requires_grad()) {
        throw Error("backward: the tensor " + root.describe() +
                    " does not require grad and has no grad_fn (did you call requires_grad_() on the inputs, "
                    "or compute it under NoGradGuard?)");
    }
    Tensor seed = grad_output;
    if (!seed.defined()) {
        if (root.numel() != 1) {
            throw ShapeError("backward: a gradient must be given for a non-scalar output " + root.describe() +
                             " (only one-element outputs get the implicit gradient 1)");
        }
        seed = ones(root.shape(), root.dtype());
    } else if (seed.shape() != root.shape()) {
        throw ShapeError("backward: the gradient has shape " + to_string(seed.shape()) + " but the output has " +
                         to_string(root.shape()));
    }

    NoGradGuard no_grad;  // backward rules compute with ordinary ops; they must not record themselves
    profiler::charge_since_last_event("unattributed");  // core/profiler.h: the engine's share starts here
    std::shared_ptr<Node> root_node = gradient_edge(root);
    std::unordered_map<Node*, GradientSum> pending;  // summed incoming gradient of each node
    pending[root_node.get()].add(seed.to(root.dtype()), root.shape(), root.dtype());

    for (Node* node : topological_order(root_node.get())) {
        auto it = pending.find(node);
        if (it == pending.end()) continue;  // no gradient reached this node (e.g. a zero-gradient branch)
        Tensor grad = it->second.take();  // waiting gradient pieces become one tensor here (core/gradient_sum.h)
        pending.erase(it);

        if (tracking_grad_norms()) node->last_grad_norm = l2_norm(grad);
        if (auto out = node->retained_output.lock()) {  // retain_grad(): accumulates like a leaf's gradient
            Tensor retained(out);
            if (retained.grad().defined()) retained.grad().add_(grad);
            else retained.set_grad(grad.clone());
        }

        GradientTargets targets;
        if (node->accepts_targets()) targets = offer_targets(*node, pending);
        profiler::charge_since_last_event("engine");
        Grads input_grads = node->apply_with_targets(grad, targets);
        targets.release_buffers();  // the sums are the pending entries' own again (no second handle)
        if (!retain_graph) node->release_saved();
        if (profiler::enabled()) profiler::charge_since_last_event(node->name() + " backward");

        for (std::size_t i = 0; i < node->inputs.size() && i < input_grads.size(); ++i) {
            const Node::Input& input = node->inputs[i];
            Gradient g = std::move(input_grads[i]);  // moved: the engine's handle may then be g's only owner
            if (targets.added(i)) {  // already in the input's sum
                if (g.defined()) throw Error("autograd: the backward rule of '" + node->name() +
                                             "' added input " + std::to_string(i) +
                                             "'s gradient into its target and also returned one");
                ++g_gradient_targets_taken;
                continue;
            }
            if (!input.node || !g.defined()) continue;
            detail::check_backward_gradient(node->name(), i, g.values());  // anomaly detection; off by default
            if (g.is_dense()) {
                // The one place broadcasting is undone: sum the gradient back to the input's shape.
                if (g.values().shape() != input.shape) g = sum_to(g.values(), input.shape);
            } else {
                g.check_fits(input.shape, node->name(), i);  // a piece names its place in the input's shape
            }
            if (g.values().dtype() != input.dtype) g.values() = g.values().to(input.dtype);
            if (g.is_piece() && !gradient_pieces_enabled()) g = g.dense_form(input.shape, input.dtype);
            pending[input.node.get()].add(std::move(g), input.shape, input.dtype);
        }
    }
    profiler::charge_since_last_event("engine");
}

}  // namespace tg::autograd
