// Graph pictures (autograd/graph.cpp): node names, shapes and edges of a small expression, leaf names,
// gradient norms after backward, escaping, determinism, and that Graphviz accepts the output.

#include "autograd/graph.h"

#include "core/grad_mode.h"
#include "core/node.h"
#include "core/ops.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <unistd.h>

using namespace tg;
using autograd::DotOptions;
using autograd::to_dot;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string error_message(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no exception)";
}

int count_lines_with(const std::string& text, const std::string& part) {
    std::istringstream in(text);
    int n = 0;
    for (std::string line; std::getline(in, line);) n += contains(line, part);
    return n;
}

// loss = sum(exp(x * w) + b) with x [2, 3] named "x", w [3] named "w", b [2, 3] unnamed.
struct Expression {
    Tensor x = from_vector<float>({0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}, {2, 3}).requires_grad_().set_name("x");
    Tensor w = from_vector<float>({1.0f, -1.0f, 0.5f}, {3}).requires_grad_().set_name("w");
    Tensor b = zeros({2, 3}).requires_grad_();
    Tensor loss = sum(exp(x * w) + b);
};

}  // namespace

TEST_SUITE("graph") {

TEST_CASE("to_dot: nodes, labels and edges of a small expression") {
    Expression e;
    const std::string dot = to_dot(e.loss);
    MESSAGE(dot);
    CHECK(dot.rfind("digraph tapegrad {\n", 0) == 0);
    CHECK(dot.substr(dot.size() - 2) == "}\n");
    // Depth-first from the root, inputs in order: sum, add, exp, mul, x, w, then b.
    CHECK(contains(dot, R"(n0 [label="sum\n[] float32", shape=ellipse, penwidth=2];)"));
    CHECK(contains(dot, R"(n1 [label="add\n[2, 3] float32", shape=ellipse];)"));
    CHECK(contains(dot, R"(n2 [label="exp\n[2, 3] float32", shape=ellipse];)"));
    CHECK(contains(dot, R"(n3 [label="mul\n[2, 3] float32", shape=ellipse];)"));
    CHECK(contains(dot, R"(n4 [label="x\n[2, 3] float32", shape=box)"));
    CHECK(contains(dot, R"(n5 [label="w\n[3] float32", shape=box)"));
    CHECK(contains(dot, R"(n6 [label="leaf\n[2, 3] float32", shape=box)"));  // b has no name
    // Edges go input -> consumer.
    for (const char* edge : {"n1 -> n0;", "n2 -> n1;", "n6 -> n1;", "n3 -> n2;", "n4 -> n3;", "n5 -> n3;"})
        CHECK_MESSAGE(contains(dot, edge), edge);
    CHECK(count_lines_with(dot, "->") == 6);
    CHECK(count_lines_with(dot, "[label=") == 7);
    CHECK_FALSE(contains(dot, "|grad|"));

    DotOptions plain;
    plain.show_shapes = false;
    CHECK(contains(to_dot(e.loss, plain), R"(n3 [label="mul", shape=ellipse];)"));
}

TEST_CASE("to_dot: deterministic, shared subexpressions drawn once, constants not drawn") {
    Tensor x = from_vector<double>({1.0, 2.0}).requires_grad_().set_name("x");
    Tensor y = x * x;                  // x feeds mul twice: two edges from one node
    Tensor loss = sum(y * 2.0 + y);    // y used twice; the constant 2.0 needs no gradient: no node
    const std::string dot = to_dot(loss);
    CHECK(dot == to_dot(loss));
    CHECK(count_lines_with(dot, "label=\"x\\n") == 1);
    CHECK(count_lines_with(dot, "[label=\"mul") == 2);  // x * x and y * 2.0
    CHECK(count_lines_with(dot, "->") == 6);            // sum<-add, add<-mul, add<-mul(y), mul<-mul(y), mul(y)<-x twice
    // A second graph of the same shape gives the same text.
    Tensor x2 = from_vector<double>({3.0, 4.0}).requires_grad_().set_name("x");
    Tensor y2 = x2 * x2;
    CHECK(to_dot(sum(y2 * 2.0 + y2)) == dot);
}

TEST_CASE("to_dot: gradient norms after a backward with tracking on") {
    Expression e;
    DotOptions options;
    options.show_grad_norms = true;
    CHECK_FALSE(contains(to_dot(e.loss, options), "|grad|"));  // no backward yet
    autograd::set_track_grad_norms(true);
    e.loss.backward();
    autograd::set_track_grad_norms(false);
    const std::string dot = to_dot(e.loss, options);
    MESSAGE(dot);
    CHECK(contains(dot, R"(n0 [label="sum\n[] float32\n|grad| = 1")"));         // the seed, 1
    CHECK(contains(dot, R"(n1 [label="add\n[2, 3] float32\n|grad| = 2.449")"));  // ones(2, 3): sqrt(6)
    CHECK(contains(dot, R"(n6 [label="leaf\n[2, 3] float32\n|grad| = 2.449")"));
    // ||exp(x w)||_2, computed by hand from the same values.
    double expected = 0.0;
    const auto xv = e.x.to_vector<double>();
    const auto wv = e.w.to_vector<double>();
    for (std::size_t i = 0; i < 6; ++i) expected += std::exp(2.0 * xv[i] * wv[i % 3]);
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.4g", std::sqrt(expected));
    CHECK(contains(dot, std::string(R"(n3 [label="mul\n[2, 3] float32\n|grad| = )") + buffer));
    CHECK_FALSE(contains(to_dot(e.loss), "|grad|"));  // only when asked for
}

TEST_CASE("to_dot: labels are escaped") {
    Tensor x = ones({2}).requires_grad_().set_name("a \"quoted\" \\ name\nwith a newline");
    const std::string dot = to_dot(sum(x));
    CHECK(contains(dot, R"(label="a \"quoted\" \\ name\nwith a newline\n[2] float32")"));
}

TEST_CASE("to_dot: a leaf root, and errors") {
    Tensor x = ones({3}).requires_grad_().set_name("x");
    const std::string dot = to_dot(x);
    CHECK(contains(dot, R"(n0 [label="x\n[3] float32", shape=box)"));
    CHECK(count_lines_with(dot, "->") == 0);
    CHECK(contains(error_message([] { to_dot(ones({2})); }),
                   "to_dot: the tensor float32 [2] does not require grad, so it has no backward graph to draw"));
    CHECK(contains(error_message([] { to_dot(Tensor()); }), "to_dot: the tensor is undefined"));
}

TEST_CASE("write_dot: the file is valid Graphviz") {
    Expression e;
    const auto dir = std::filesystem::temp_directory_path() / ("tg-test-graph-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "graph.dot").string();
    autograd::write_dot(e.loss, path);
    std::ifstream in(path);
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    CHECK(text == to_dot(e.loss));

    if (std::filesystem::exists("/usr/bin/dot")) {
        const std::string svg = (dir / "graph.svg").string();
        const std::string command = "/usr/bin/dot -Tsvg '" + path + "' -o '" + svg + "' 2>&1";
        CHECK(std::system(command.c_str()) == 0);
        CHECK(std::filesystem::file_size(svg) > 100);
    } else {
        MESSAGE("graphviz not installed: skipping the dot -Tsvg check");
    }

    CHECK(contains(error_message([&] { autograd::write_dot(e.loss, (dir / "missing" / "g.dot").string()); }),
                   "write_dot: " + (dir / "missing" / "g.dot").string() + ": cannot create temporary file"));
    std::filesystem::remove_all(dir);
}

}  // TEST_SUITE
