// What the product kernels share: linear.cu (inference, the NF4 tables and
// dequantization), linear_fold.cu (the training product with its LoRA
// branch folded in) and linear_bwd.cu (its backward).
#ifndef SK_KERNELS_LINEAR_INTERNAL_CUH
#define SK_KERNELS_LINEAR_INTERNAL_CUH

#include <cuda_bf16.h>

#include "kernels/launch.cuh"

#define MV_ROWS 8      // input rows the matrix-vector kernels take at once; more go to cuBLASLt
#define FOLD_COLS 8    // the columns a folded product adds for the LoRA branch (rank ≤ 8)
#define FOLD_XT_ROWS 4 // rows a block of the one-pass [x | t] kernel

// Bytes of a kept NF4 weight's bf16 copy (weight_cache.cu): out rows of ld
// in + FOLD_COLS, then FOLD_COLS rows for A
static inline size_t sk_cuda_kept_bytes(int64_t out, int64_t in)
{
	return (size_t)((out + FOLD_COLS) * (in + FOLD_COLS)) * 2;
}

// linear.cu
// n elements of the NF4 weight from first (a multiple of 16) as bf16 into
// rows of ld (ld > cols leaves room after each row, and needs first 0 and
// cols % 16 == 0); d 16-byte aligned.
void sk_cuda_nf4_to_bf16(sk_cuda *c, const sk_cuda_weight *w, int64_t first, int64_t n, int64_t cols, int64_t ld,
                         __nv_bfloat16 *d);
// n fp32 values to bf16, one a thread
void sk_cuda_to_bf16(sk_cuda *c, const float *x, int64_t n, __nv_bfloat16 *y);
// dx (+)= dy · W for any shape or alignment, one thread an element of dx in fp32
void sk_cuda_linear_bwd_any(sk_cuda *c, const sk_cuda_weight *w, const float *dy, int64_t n, float *dx, int accumulate);
// The buffer of LoRA intermediates, grown to need bytes; NULL (recorded)
// when it cannot be, or would have to grow during a recording.
float *sk_cuda_lora_ws(sk_cuda *c, size_t need);

// linear_fold.cu
// Rows of cols fp32 values (ld ldx) to bf16 rows of ld ldy.
void sk_cuda_rows_to_bf16(sk_cuda *c, const float *x, int64_t n, int64_t cols, int64_t ldx, __nv_bfloat16 *y,
                          int64_t ldy);
// xh[i] = [bf16(x[i]) | bf16(t[i]) | 0 ...], rows of in + FOLD_COLS (in 0: t alone)
void sk_cuda_fold_x(sk_cuda *c, const float *x, const float *t, int64_t n, int64_t in, int r, __nv_bfloat16 *xh);
// bf16(scale · B) as the last FOLD_COLS columns of wh's out rows of in +
// FOLD_COLS (in 0: B alone, rows of 8); with A, A's rows after them.
void sk_cuda_fold_b(sk_cuda *c, const float *B, float scale, int64_t out, int64_t in, int r, const float *A,
                    __nv_bfloat16 *wh);
// Without dropout, bf16(x) into xh (rows of in + FOLD_COLS; NULL: not
// written) and bf16(x Aᵀ) into th (rows of ldt) in one pass over x.
void sk_cuda_fold_xt(sk_cuda *c, const float *x, const float *A, int64_t n, int64_t in, int r, __nv_bfloat16 *xh,
                     __nv_bfloat16 *th, int64_t ldt);
// The bf16 rows [W | scale·B] of a training product in wh (rows of in +
// FOLD_COLS), with A's rows after them when a_rows: the weight dequantized
// (or copied) unless kept (wh is the weight cache's copy already), scale·B
// folded unless the copy holds this pair's current columns. 0 or -1.
int sk_cuda_fold_weight_fill(sk_cuda *c, const sk_cuda_weight *w, const sk_cuda_lora *l, __nv_bfloat16 *wh, int kept,
                             const float *a_rows);

// lora_grad_a.cu: gA[r][in] += dtᵀ x (dt rows of FOLD_COLS) in two passes over
// row chunks, the same result every run; part: sk_cuda_lora_ga_bytes of room.
// Needs in % 4 == 0 and x 16-byte aligned. 0 or -1 (recorded).
size_t sk_cuda_lora_ga_bytes(int64_t n, int64_t in);
int sk_cuda_lora_ga(sk_cuda *c, const float *x, const float *dt, int64_t n, int64_t in, int r, float *gA, float *part);

#endif
