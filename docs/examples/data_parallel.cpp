// The snippet of docs/distributed.md: a data-parallel training loop written once for any number of ranks.
// Run as one process (meson test doc-data-parallel) and under `mpirun -np 2` (suite 'mpi'); the output quoted in
// the page is what rank 0 prints.
//
// Every rank fits the same line y = 3x − 1 to its own half (quarter, ...) of a global batch of 8 points; the
// averaged gradient is the gradient of the whole batch, so the result does not depend on the number of ranks.

#include <tapegrad/tapegrad.h>

#include <cmath>
#include <cstdio>

int main() {
    auto& world = tg::distributed::Communicator::world();  // rank 0 of 1 unless started by mpirun

    tg::manual_seed(0);
    tg::nn::Linear model(1, 1);  // the same initial weights on every rank (same seed)
    tg::optim::SGD optimizer(model.parameters(), /*lr=*/0.5);
    tg::distributed::GradientBucketer bucketer(model.parameters());

    const std::int64_t global_batch = 8, local = global_batch / world.size();
    for (int step = 1; step <= 200; ++step) {
        // This rank's points: x = i / 8 for i in [rank · local, (rank + 1) · local).
        tg::Tensor x = tg::arange(world.rank() * local, (world.rank() + 1) * local).reshape({local, 1}) / 8.0;
        tg::Tensor y = x * 3.0 - 1.0;
        tg::Tensor loss = tg::mean(tg::square(model.forward(x) - y));
        loss.backward();
        bucketer.synchronize();  // grad = mean over ranks = the gradient of the whole batch
        optimizer.step();
        optimizer.zero_grad();
        const double global_loss = world.allreduce_average(loss.item());
        if (world.is_root() && step % 50 == 0) std::printf("step %d: loss %.6f\n", step, global_loss);
    }
    const double w = model.weight.item(), b = model.bias.item();
    if (world.is_root()) std::printf("%d rank(s): y = %.3f x %+.3f\n", world.size(), w, b);
    return std::abs(w - 3.0) < 0.05 && std::abs(b + 1.0) < 0.05 ? 0 : 1;
}
