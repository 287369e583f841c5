// A tour of tg::Tensor, quoted piece by piece by docs/tensors.md. Built and run by `meson test` (the test
// 'doc-tensors-tour'), so every snippet in the page compiles and does what the page says: each section
// checks its claims with expect() and the program exits non-zero if one is false.
//
//   build/docs/doc-tensors-tour

#include <tapegrad/tapegrad.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace {

int failures = 0;

// Prints a claim and whether it holds; a false claim makes the program fail.
void expect(bool holds, const std::string& claim) {
    std::cout << (holds ? "  ok: " : "  FAILED: ") << claim << '\n';
    if (!holds) ++failures;
}

void section(const std::string& title) { std::cout << "\n== " << title << " ==\n"; }

std::string strides_of(const tg::Tensor& t) { return tg::to_string(t.strides()); }

}  // namespace

int main() {
    // [anatomy]
    section("a tensor is storage + shape + strides + offset + dtype");
    tg::Tensor x = tg::arange(12.0).view({3, 4});  // 0, 1, ..., 11 as a 3x4 matrix
    std::cout << x << '\n';
    std::cout << "shape " << tg::to_string(x.shape()) << ", strides " << strides_of(x) << ", offset "
              << x.offset() << ", dtype " << tg::dtype_name(x.dtype()) << '\n';
    // Element [i, j] lives at storage[offset + i * 4 + j * 1].
    expect(x.strides() == tg::Strides{4, 1}, "a contiguous [3, 4] tensor has strides [4, 1]");
    expect(x.storage()->nbytes() == 12 * sizeof(float), "its storage holds 12 floats");
    // [anatomy]

    // [transpose]
    section("transpose is a stride trick");
    tg::Tensor xt = x.t();  // [4, 3]: swap the shape and the strides, copy nothing
    std::cout << xt << '\n';
    std::cout << "shape " << tg::to_string(xt.shape()) << ", strides " << strides_of(xt) << '\n';
    expect(xt.storage() == x.storage(), "x.t() shares x's storage");
    expect(xt.strides() == tg::Strides{1, 4}, "its strides are [1, 4]");
    expect(!xt.is_contiguous(), "it is not contiguous: rows of xt are columns of x");
    // [transpose]

    // [slice]
    section("slices move the offset and multiply a stride");
    tg::Tensor cols = x.slice(1, 1, 4, 2);  // columns 1 and 3: x[:, 1:4:2] in Python
    std::cout << cols << '\n';
    std::cout << "shape " << tg::to_string(cols.shape()) << ", strides " << strides_of(cols) << ", offset "
              << cols.offset() << '\n';
    expect(cols.offset() == 1 && cols.strides() == tg::Strides{4, 2}, "offset 1, strides [4, 2]");
    tg::Tensor row = x.select(0, 2);  // row 2, with dim 0 removed: x[2]
    expect(row.offset() == 8 && row.to_vector<float>() == std::vector<float>{8, 9, 10, 11}, "x.select(0, 2) is row 2");
    // Writes through a view land in the shared storage.
    cols.fill_(-1.0);
    std::cout << x << '\n';
    expect(x.to_vector<float>()[3] == -1.0f, "filling the view changed x");
    // [slice]

    // [view-reshape]
    section("view never copies, so it can fail; reshape copies when it must");
    tg::Tensor flat = x.view({12});  // x is contiguous: fine
    expect(flat.storage() == x.storage(), "x.view({12}) shares storage");
    try {
        xt.view({12});  // the elements of xt are not evenly spaced in memory in row-major order
    } catch (const tg::ShapeError& e) {
        std::cout << "error: " << e.what() << '\n';
    }
    tg::Tensor copied = xt.reshape({12});
    expect(copied.storage() != x.storage(), "xt.reshape({12}) had to copy");
    expect(x.reshape({2, 6}).storage() == x.storage(), "x.reshape({2, 6}) did not");
    expect(xt.view({2, 2, 3}).strides() == tg::Strides{2, 1, 4}, "xt.view({2, 2, 3}) works: it only splits dim 0");
    std::cout << copied << '\n';
    // [view-reshape]

    // [broadcast]
    section("broadcasting");
    tg::Tensor a = tg::ones({3, 1, 5});
    tg::Tensor b = tg::arange(4.0).view({4, 1});
    tg::Tensor c = a + b;  // [3, 1, 5] and [4, 1] -> [3, 4, 5]
    std::cout << "[3, 1, 5] + [4, 1] -> " << tg::to_string(c.shape()) << '\n';
    expect(c.shape() == tg::Shape{3, 4, 5}, "the result has shape [3, 4, 5]");
    tg::Tensor e = b.expand({3, 4, 5});  // what broadcasting does to b, as a view
    std::cout << "b.expand({3, 4, 5}): strides " << strides_of(e) << '\n';
    expect(e.strides() == tg::Strides{0, 1, 0}, "expanded dims have stride 0: one value, read many times");
    try {
        tg::ones({3, 2}) + tg::ones({4});
    } catch (const tg::ShapeError& err) {
        std::cout << "error: " << err.what() << '\n';
    }
    // [broadcast]

    // [dtypes]
    section("dtypes and promotion");
    tg::Tensor i = tg::from_vector(std::vector<std::int32_t>{7, -7, 2});
    tg::Tensor f = tg::ones({3});
    std::cout << "int32 + int32 -> " << tg::dtype_name((i + i).dtype()) << '\n';
    std::cout << "int32 + float32 -> " << tg::dtype_name((i + f).dtype()) << '\n';
    std::cout << "float32 + float64 -> " << tg::dtype_name((f + f.to(tg::kFloat64)).dtype()) << '\n';
    std::cout << "int32 / int32 -> " << tg::div(i, i + 1.0) << '\n';  // true division
    std::cout << "exp(int32) -> " << tg::dtype_name(tg::exp(i).dtype()) << '\n';
    std::cout << "int32 * 0.5 -> " << i * 0.5 << '\n';
    tg::Tensor g = tg::from_vector(std::vector<float>{-2.7f, 2.7f}).to(tg::kInt32);
    std::cout << "{-2.7, 2.7}.to(int32) -> " << g << '\n';
    expect(g.to_vector<std::int32_t>() == std::vector<std::int32_t>{-2, 2}, "conversion to int truncates toward zero");
    // [dtypes]

    // [errors]
    section("errors name the op and the shapes");
    try {
        x.permute({0, 0});
    } catch (const tg::Error& err) {
        std::cout << "error: " << err.what() << '\n';
    }
    try {
        x.select(0, 3);
    } catch (const tg::IndexError& err) {
        std::cout << "error: " << err.what() << '\n';
    }
    try {
        x.data<double>();
    } catch (const tg::DTypeError& err) {
        std::cout << "error: " << err.what() << '\n';
    }
    // [errors]

    std::cout << '\n' << (failures == 0 ? "all claims hold" : "some claims FAILED") << '\n';
    return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
