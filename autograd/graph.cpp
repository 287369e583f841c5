// Graphviz pictures of the backward graph (see autograd/graph.h).

#include "autograd/graph.h"

#include "core/node.h"
#include "core/file_io.h"

#include <cstdio>
#include <sstream>
#include <unordered_map>

namespace tg::autograd {

namespace {

// A DOT double-quoted string body: backslash and quote escaped, line breaks as "\n" (which DOT draws as a
// centred line break), other control characters dropped. UTF-8 passes through unchanged.
std::string escape(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '\\' || c == '"') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) {
            out += c;
        }
    }
    return out;
}

std::string format_norm(double norm) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.4g", norm);
    return buffer;
}

std::string label_of(const Node& node, const DotOptions& options) {
    std::string title = node.name();
    if (node.is_accumulator()) {
        const auto& leaf = static_cast<const AccumulateGrad&>(node).leaf();
        title = leaf && !leaf->name.empty() ? leaf->name : "leaf";
    }
    std::string label = escape(title);
    if (options.show_shapes) label += "\\n" + escape(to_string(node.output_shape) + " " + dtype_name(node.output_dtype));
    if (options.show_grad_norms && node.last_grad_norm >= 0.0) label += "\\n|grad| = " + format_norm(node.last_grad_norm);
    return label;
}

}  // namespace

std::string to_dot(const Tensor& root, const DotOptions& options) {
    if (!root.defined()) throw ValueError("to_dot: the tensor is undefined");
    if (!root.requires_grad()) {
        throw ValueError("to_dot: the tensor " + root.describe() +
                         " does not require grad, so it has no backward graph to draw");
    }
    const std::shared_ptr<Node> root_node = gradient_edge(root);

    // Number the nodes in depth-first pre-order from the root (iterative: graphs can be deep), visiting
    // inputs in order, so the numbering depends only on the graph's structure.
    std::unordered_map<const Node*, std::size_t> id;
    std::vector<const Node*> order;
    std::vector<const Node*> stack{root_node.get()};
    while (!stack.empty()) {
        const Node* node = stack.back();
        stack.pop_back();
        if (!id.try_emplace(node, order.size()).second) continue;
        order.push_back(node);
        // Pushed in reverse so that input 0 is numbered first.
        for (auto it = node->inputs.rbegin(); it != node->inputs.rend(); ++it)
            if (it->node && !id.count(it->node.get())) stack.push_back(it->node.get());
    }

    std::ostringstream dot;
    dot << "digraph tapegrad {\n";
    dot << "  node [fontname=\"Helvetica\", fontsize=10];\n";
    for (const Node* node : order) {
        dot << "  n" << id.at(node) << " [label=\"" << label_of(*node, options) << "\"";
        if (node->is_accumulator()) dot << ", shape=box, style=filled, fillcolor=\"#dae8fc\"";
        else dot << ", shape=ellipse";
        if (node == root_node.get()) dot << ", penwidth=2";
        dot << "];\n";
    }
    // Edges input -> consumer, in the consumer's order and then input order.
    for (const Node* node : order) {
        for (const auto& input : node->inputs)
            if (input.node) dot << "  n" << id.at(input.node.get()) << " -> n" << id.at(node) << ";\n";
    }
    dot << "}\n";
    return dot.str();
}

void write_dot(const Tensor& root, const std::string& path, const DotOptions& options) {
    const std::string text = to_dot(root, options);
    write_file_atomically(path, text.data(), text.size(), "write_dot");
}

}  // namespace tg::autograd
