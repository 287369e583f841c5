#pragma once
// Internal to kernels/attention_poly.cpp (never installed): the causal forward and consistent backward, fast.
// The code is in kernels/poly_causal/, one job per file:
//   schedule.h   tasks: how many segments per head, running tasks in workspace slots on threads
//   layout.h     sizes of a problem, and the panels of a chunk in a task's slot (what each one holds)
//   chunk_io.h   loading a chunk's rows into panels (t·Qᵀ, Ṽ, Ĝ, ...) and storing results, prefetching
//   tiles.h      the intra-chunk score tiles under the causal mask (p and p′ applied in place)
//   state.h      the running states S and R: one chunk's update, segment totals, the prefix/suffix scan
//   forward.h    the forward's chunk loop and driver
//   backward.h   the backward's two passes and their two schedules (from checkpoints; wavefront)
//
// The equations are the ones at the top of attention_poly.cpp; this file changes only how they are computed:
//
// 1. Feature-major chunks and one small register-blocked kernel (attention_poly_simd.h). Per chunk of c rows
//    the features Uᵀ, Wᵀ (R × c) are built W rows at a time, and every product — U_b S, W_bᵀ Ṽ_b, Ĝ_b Sᵀ, the
//    c × c score tiles and their products — is `small_gemm` on operands already in L1/L2: no packing, no
//    allocation, no transposition of anything R wide. The masked triangle of a tile is skipped in the products
//    that consume it.
//
// 2. Segments, for threads inside one head. The sequence is cut at chunk boundaries into P segments, P fixed by
//    the shapes (segments_per_head), never by the thread count. The running states are prefix (S) or suffix
//    (R) sums, so each segment can start from its own initial state once that is known.
//    The forward:
//      phase 1 (parallel): the key-state total S_s = Σ_{b in s} W_bᵀ Ṽ_b of every segment s < P − 1 (in two
//                          halves, so that two threads share it even when P = 2),
//      combine (serial):   S_prefix[s] = S_0 + … + S_{s−1}, in order,
//      phase 2 (parallel): every segment's forward from its initial state, exactly the serial chunk loop.
//    Extra work: one state update (2·R·E flops) per row of the first P − 1 segments.
//    The backward needs no such phase. From the forward's checkpoints (S at the start of every block of up to
//    16 chunks, mode approx) it takes the blocks from the last to the first: pass 1 of a block from its
//    checkpoint, then pass 2 of the block from the R the block after it left, while the block's rows are in
//    cache; one head is a pipeline of two tasks (backward.h). Without checkpoints (approx_backward) S runs
//    forward and R backward through the segments, so at step k pass 1 of segment k and pass 2 of segment
//    P − 1 − k run side by side (a wavefront), each from the state the previous segment of its chain left.
//    Either way pass 1 writes dQ and, from the c × c score tiles it computes anyway, the intra-chunk parts of
//    dK and dV; pass 2 the inter-chunk parts — each tile once.
//    Extra memory: 2·P states of R × E per head, and the checkpoints (one state per block). Every number is computed by one task in an order fixed by the
//    shapes, so results are bitwise identical for any thread count (the backward's even for any P).

#include "kernels/poly_causal/backward.h"
#include "kernels/poly_causal/forward.h"
