#pragma once
// Grad mode: whether ops record themselves on the tape. Off inside NoGradGuard (evaluation, optimizer
// updates, the backward pass itself). Per thread, like PyTorch's torch.no_grad().

namespace tg {

bool is_grad_enabled();
void set_grad_enabled(bool enabled);

class NoGradGuard {
public:
    NoGradGuard() : previous_(is_grad_enabled()) { set_grad_enabled(false); }
    ~NoGradGuard() { set_grad_enabled(previous_); }
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool previous_;
};

// The opposite, like torch.enable_grad(): records even inside a NoGradGuard (e.g. a measurement that needs
// gradients while the caller evaluates without them).
class EnableGradGuard {
public:
    EnableGradGuard() : previous_(is_grad_enabled()) { set_grad_enabled(true); }
    ~EnableGradGuard() { set_grad_enabled(previous_); }
    EnableGradGuard(const EnableGradGuard&) = delete;
    EnableGradGuard& operator=(const EnableGradGuard&) = delete;

private:
    bool previous_;
};

}  // namespace tg
