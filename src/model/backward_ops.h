/*
 * backward_ops.h — batched training-forward and backward kernels of the LLaMA blocks (internal).
 *
 * Every op works on a batch of N = B*T rows (row-major activations). Forward variants save what
 * the backward needs (RMSNorm's 1/rms per row, attention's probabilities); backward variants take
 * dY and produce dX. Base weights are frozen, so no op returns a gradient for a weight.
 *
 * The file is written over a scalar type BW_REAL (float in the library). The tests compile the
 * same source a second time with BW_REAL = double and BW(name) renamed, to check each backward
 * against central finite differences in double precision (tests/model/test_backward_ops.c). Only
 * the float instantiation is declared here.
 *
 * Threads: every op splits disjoint outputs over msbnb__threads() with fixed-order reductions, so
 * results do not depend on the thread count.
 */
#ifndef MSBNB_MODEL_BACKWARD_OPS_H
#define MSBNB_MODEL_BACKWARD_OPS_H

#include <stdint.h>

#ifndef BW_REAL
#define BW_REAL float
#define BW(name) msbnb__##name
#endif

/* Smallest amount of work (element operations) for which an op opens an OpenMP parallel region
 * (default 2^17). Tests set it to 0 to run every op threaded on small shapes. */
extern int64_t BW(parallel_min);

/* ---------------------------------------------------------------- RMSNorm
 * y[n, :] = x[n, :] * rstd[n] * w[:],  rstd[n] = 1 / sqrt(mean(x[n, :]²) + eps)
 * x, y: [N, D]; w: [D]; rstd: [N] (saved for the backward). y may not alias x. */
void BW(rmsnorm_fwd)(const BW_REAL *x, const BW_REAL *w, int64_t N, int64_t D, double eps, BW_REAL *y,
                     BW_REAL *rstd);
/* dx[n, :] += ∂L/∂x given dy [N, D], the forward's x and rstd (weight w frozen). */
void BW(rmsnorm_bwd)(const BW_REAL *dy, const BW_REAL *x, const BW_REAL *w, const BW_REAL *rstd, int64_t N,
                     int64_t D, BW_REAL *dx);

/* ---------------------------------------------------------------- RoPE
 * Rotary embedding applied in place to x [B*T, H, hd] (row b*T + t is position t).
 * Pairs: interleaved != 0 → (2i, 2i+1) (llama2.c / Meta layout); 0 → (i, i + hd/2) (HF rotate_half).
 * Pair i at position t turns by angle t * theta^(-2i/hd).
 * cos_sin: table [T, hd/2, 2] from rope_table (precomputed once per sequence length).
 * inverse != 0 turns by the opposite angle: that is exactly the backward (a rotation's transpose). */
void BW(rope_table)(int64_t T, int64_t hd, double theta, BW_REAL *cos_sin);
void BW(rope_apply)(BW_REAL *x, int64_t B, int64_t T, int64_t H, int64_t hd, const BW_REAL *cos_sin,
                    int interleaved, int inverse);

/* ---------------------------------------------------------------- causal grouped-query attention
 * q: [B, T, H, hd]; k, v: [B, T, KVH, hd] (H a multiple of KVH; query head h reads kv head
 * h / (H/KVH), as HF's repeat_kv); out: [B, T, H, hd].
 * probs: [B, H, T, T] softmax(q·kᵀ / sqrt(hd)) with the causal mask (entries above the diagonal
 * are written as 0) and, when window > 0, the sliding window (query t sees keys t-window+1..t; the
 * others written as 0), saved for the backward. The backward reads the mask from those zeros.
 * window 0 = every earlier position.
 * scratch for the forward: none. */
void BW(attention_fwd)(const BW_REAL *q, const BW_REAL *k, const BW_REAL *v, int64_t B, int64_t T, int64_t H,
                       int64_t KVH, int64_t hd, int64_t window, BW_REAL *probs, BW_REAL *out);
/* Given dout [B, T, H, hd]: dq [B, T, H, hd], dk, dv [B, T, KVH, hd] (all overwritten).
 * scratch: [slots * T * T] values of BW_REAL; at most `slots` threads are used (the count
 * attention_bwd_scratch(T) gives is for msbnb__threads() slots).
 * Both products run through BLAS (sgemm / dgemm), one call per head on one thread: the caller
 * keeps OpenBLAS single-threaded for thread-count-independent results (the trainer does). */
int64_t BW(attention_bwd_scratch)(int64_t T);
void BW(attention_bwd)(const BW_REAL *dout, const BW_REAL *q, const BW_REAL *k, const BW_REAL *v,
                       const BW_REAL *probs, int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t hd,
                       BW_REAL *dq, BW_REAL *dk, BW_REAL *dv, BW_REAL *scratch, int slots);

/* ---------------------------------------------------------------- SwiGLU
 * h = silu(g) * u, silu(g) = g / (1 + e^-g); g, u, h: [n] (flat). */
void BW(swiglu_fwd)(const BW_REAL *g, const BW_REAL *u, int64_t n, BW_REAL *h);
/* dg, du overwritten from dh and the forward's g, u. */
void BW(swiglu_bwd)(const BW_REAL *dh, const BW_REAL *g, const BW_REAL *u, int64_t n, BW_REAL *dg,
                    BW_REAL *du);

/* ---------------------------------------------------------------- embedding
 * x[n, :] = table[tok[n], :]; table: [V, D]; tok: [N] in [0, V) (checked by the caller). */
void BW(embedding_fwd)(const BW_REAL *table, const int32_t *tok, int64_t N, int64_t D, BW_REAL *x);
/* dtable[tok[n], :] += dx[n, :] (rows scattered in a fixed order: n ascending). */
void BW(embedding_bwd)(const BW_REAL *dx, const int32_t *tok, int64_t N, int64_t D, BW_REAL *dtable);

/* ---------------------------------------------------------------- cross-entropy
 * Mean cross-entropy over the rows whose target is >= 0 (target < 0 = ignored, as PyTorch's
 * ignore_index): logits [N, V], targets [N]. Returns the mean loss (double accumulation, rows in
 * order); *count (may be NULL) receives the number of rows counted. When dlogits is non-NULL it
 * receives ∂loss/∂logits = (softmax - onehot) / count ([N, V]; ignored rows zero).
 * row_loss: scratch [N] doubles (per-row losses, summed afterwards in row order). */
double BW(cross_entropy)(const BW_REAL *logits, const int32_t *targets, int64_t N, int64_t V,
                         BW_REAL *dlogits, double *row_loss, int64_t *count);

#endif /* MSBNB_MODEL_BACKWARD_OPS_H */
