// Built against the *installed* library with `pkg-config --cflags --libs tapegrad`, as a user would.
#include <tapegrad/tapegrad.h>

#include <iostream>

int main() {
    tg::Tensor x = tg::from_vector<float>({1, 2, 3, 4}, {2, 2}).requires_grad_();
    tg::Tensor y = tg::sum(x * x);
    y.backward();
    const auto g = x.grad().to_vector<float>();  // d(sum x²)/dx = 2x
    const bool ok = y.item() == 30.0 && g == std::vector<float>{2, 4, 6, 8};
    std::cout << "installed tapegrad: sum(x*x) = " << y.item() << ", grad ok: " << (ok ? "yes" : "no") << "\n";
    return ok ? 0 : 1;
}
