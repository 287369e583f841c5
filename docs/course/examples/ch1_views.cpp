// Chapter 1 (docs/course/01-strides-and-views.md): element [i, j, ...] lives at
// storage[offset + i·stride0 + j·stride1 + ...]; views change only (shape, strides, offset).
//
//   build/docs/course-ch1-views

#include <tapegrad/tapegrad.h>

#include "docs/course/examples/course_check.h"

using course::expect;

int main() {
    const tg::Tensor x = tg::arange(12.0).view({3, 4});  // storage 0 1 2 ... 11
    std::cout << "x: shape " << tg::to_string(x.shape()) << ", strides " << tg::to_string(x.strides()) << "\n";
    expect(x.strides() == tg::Strides{4, 1}, "row-major [3, 4]: one row is 4 elements, one column 1");

    // [transpose]
    const tg::Tensor xt = x.t();  // [4, 3]: the same numbers read in another order
    expect(xt.strides() == tg::Strides{1, 4}, "x.t() swaps the strides: [1, 4]");
    expect(xt.storage() == x.storage(), "and shares x's storage (no copy)");
    expect(!xt.is_contiguous(), "so it is not contiguous");
    // [transpose]

    // [slice]
    const tg::Tensor cols = x.slice(1, 1, 4, 2);  // columns 1 and 3
    expect(cols.strides() == tg::Strides{4, 2}, "slicing with step 2 doubles the column stride: [4, 2]");
    expect(cols.offset() == 1, "and moves the offset to x[0, 1] = storage[1]");
    expect(cols.to_vector<float>() == std::vector<float>{1, 3, 5, 7, 9, 11}, "values 1 3 / 5 7 / 9 11");
    // [slice]

    // [select]
    const tg::Tensor row = x.select(0, 2);  // x[2, :]
    expect(row.shape() == tg::Shape{4} && row.offset() == 8, "select(0, 2) drops dim 0: shape [4], offset 8");
    // [select]

    // [write-through]
    cols.select(0, 0).fill_(-1.0);  // writes through the views into x's storage
    expect(x.to_vector<float>()[1] == -1.0f && x.to_vector<float>()[3] == -1.0f, "writing a view writes x");
    // [write-through]

    // [view-vs-reshape]
    bool threw = false;
    try {
        (void)xt.view({12});  // [1, 4] strides cannot be read as one run of 12
    } catch (const tg::ShapeError& e) {
        threw = true;
        std::cout << "xt.view({12}) -> " << e.what() << "\n";
    }
    expect(threw, "view() refuses layouts that would need a copy");
    expect(xt.reshape({12}).is_contiguous(), "reshape() copies instead (contiguous result)");
    // [view-vs-reshape]
    return course::failures == 0 ? 0 : 1;
}
