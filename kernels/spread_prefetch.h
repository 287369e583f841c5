#pragma once
// Cache lines of one operand asked for while a GEMM tile computes, spread over the tile's k loop.
//
// The GEMM's weight gradients dW = dYᵀ·X read dY in place (kernels/gemm.cpp, next_a_line): each tile takes MR
// values from each of kc rows lda apart, one cache line per row shared by 2-3 tiles, a pattern the hardware
// prefetcher does not follow, so the tile that first touches a line waits for memory. A tile computing from L2
// takes about 1 µs, long enough to bring in the next tile's lines if they are asked for now. SpreadPrefetch
// describes those lines; the micro-kernel's k loop walks them with a SpreadCursor, one request every few
// steps (one per step for a column of dY), instead of a burst of kc requests before the tile.
// (docs/performance.md, "Session 10", has the measurements, and the weight slivers of X·Wᵀ and dY·W, for
// which a spread measured no better than the burst of prefetch_b_sliver_l2.)
//
// The region is `rows` rows of `row_bytes` bytes, row r at first + r·stride. Every 64-byte line that holds a
// byte of a row is requested at least once (a row need not start on a line: its last byte is requested too),
// and no address outside the rows is.
//
// Internal header (not installed).

#include <cstdint>

namespace tg::kernels::gemm_detail {

struct SpreadPrefetch {
    const char* first = nullptr;
    std::int64_t stride = 0;     // bytes from one row to the next
    std::int64_t row_bytes = 0;  // bytes of each row to ask for
    std::int64_t rows = 0;       // 0: nothing to ask for
};

// Asks for the cache line holding p to be brought into L2 (a hint: never faults, never changes a result).
struct PrefetchLineL2 {
    void operator()(const char* p) const { __builtin_prefetch(p, 0, 2); }
};

// Walks the lines of a SpreadPrefetch over a k loop of kc steps: at_step(p) at the top of every step asks
// for the next line every `interval` steps (interval = kc / lines, at least 1), finish() after the loop asks
// for whatever the loop did not reach (more lines than steps). Request is called with each address.
template <class Request = PrefetchLineL2>
class SpreadCursor {
public:
    SpreadCursor(const SpreadPrefetch& s, std::int64_t kc, Request request = {}) : s_(s), request_(request) {
        lines_per_row_ = s.rows > 0 && s.row_bytes > 0 ? s.row_bytes / 64 + 1 : 0;
        const std::int64_t lines = s.rows * lines_per_row_;
        if (lines == 0) {
            row_ = s.rows;  // nothing to ask for, now or in finish()
            next_step_ = -1;
        } else {
            interval_ = kc > lines ? kc / lines : 1;
        }
    }

    void at_step(std::int64_t p) {
        if (p != next_step_) return;
        request_next();
        next_step_ = row_ < s_.rows ? p + interval_ : -1;
    }

    void finish() {
        while (row_ < s_.rows) request_next();
    }

private:
    // Line l of row r: bytes [64·l, 64·l + 64) of the row, the last one clamped to the row's last byte.
    void request_next() {
        const std::int64_t offset = line_ * 64 < s_.row_bytes ? line_ * 64 : s_.row_bytes - 1;
        request_(s_.first + row_ * s_.stride + offset);
        if (++line_ == lines_per_row_) {
            line_ = 0;
            ++row_;
        }
    }

    SpreadPrefetch s_;
    Request request_;
    std::int64_t lines_per_row_ = 0, interval_ = 1, next_step_ = 0, row_ = 0, line_ = 0;
};

}  // namespace tg::kernels::gemm_detail
