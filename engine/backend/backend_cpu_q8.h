/* Integer dot products for block-quantized and NF4 weights (CPU backend
 * internals).
 *
 * A linear op over quantized weights first quantizes each activation row to
 * 8 bits in blocks of 32 (q = round(x / d), d = max|x| / 127), then every
 * weight block is multiplied into the activation block in integers (u8 × s8
 * multiply-adds: AVX2 maddubs/madd, AVX-512 VNNI or AVX-VNNI dpbusd) and the
 * block's integer sum is scaled once in fp32. Weights are read where they
 * are stored, decoded in registers; nothing is unpacked to memory. Two
 * kinds of kernels: one weight row against up to 8 activation rows (a
 * decode step), and one against a group of 8 or 4 interleaved rows, one
 * row per vector lane (prefill, batches).
 *
 * Accuracy: the result is the exact dot product of the dequantized weights
 * with the dequantized activations (up to fp32 rounding of the per-block
 * sums), so it differs from the fp32 reference by at most
 *     Σ_blocks (d_b / 2) · Σ_{i in block} |w_i|,
 * half an activation step per element, weighted by the weights (NF4 adds
 * its levels' rounding, below). */
#ifndef SK_BACKEND_CPU_Q8_H
#define SK_BACKEND_CPU_Q8_H

#include <stddef.h>
#include <stdint.h>

#include "engine/format/dtype.h"

#define SK_Q8_BLOCK 32
#define SK_Q8_MAX_NX 8 /* activation rows one kernel call takes together */

/* How a kernel folds a weight type's constant offset (Q4_0's 8, Q5_0's 16,
 * Q6_K's 32, 128 for Q8_0 read as unsigned) into the integer sums: the
 * activation carries -off · (sum of each 4 values) as 8 int32 per block
 * (LANES: the accumulator dpbusd starts from) or off · (sum of each 2
 * values) as 16 int16 (PAIRS: subtracted from maddubs' pair sums); the
 * grouped kernels' BLOCK and HALVES are described with sk_q8_group. */
typedef enum { SK_Q8_CORR_NONE, SK_Q8_CORR_LANES, SK_Q8_CORR_PAIRS, SK_Q8_CORR_BLOCK, SK_Q8_CORR_HALVES } sk_q8_corr;

/* Quantized activation rows, block-major: block b of every row, then
 * block b + 1, so that a kernel reaches row i of a batch at a constant
 * offset from row 0 (one pointer per array, not one per row). Each array
 * has 64 bytes of slack at its end: kernels read 8 rows' floats at once. */
typedef struct {
	int64_t n;       /* values per row, a multiple of 32 */
	int64_t rows;
	int8_t *q;       /* [n / 32][rows][32] in [-127, 127] */
	float *d;        /* [n / 32][rows] block scale */
	float *s;        /* [n / 32][rows] d · Σq: the block's sum as the kernels see it */
	int32_t *c;      /* [n / 32][rows][8] offset correction (corr kind), or NULL */
	int corr, off;
} sk_q8_rows;

/* Index of block b of row r in the arrays above (times 32 for q, 8 for c). */
static inline int64_t sk_q8_at(const sk_q8_rows *x, int64_t r, int64_t b)
{
	return b * x->rows + r;
}

/* Quantized rows interleaved in groups of G = 8 (prefill) or 4 (a batch of
 * a few sequences) for the kernels that put one row in each vector lane.
 * Per group and block, G vectors of 32 bytes: vector (G / 4) · k + r / 4
 * holds, for the four rows r of its half of the group (of all of it when
 * G = 4), their dword k (bytes 4k..4k+3) in its low 16 bytes and their
 * dword k + 4 in its high 16 bytes. A weight block shuffled with vpshufd
 * (dword k to the low lanes, k + 4 to the high ones) then meets four rows
 * per vpdpbusd, no broadcast loads needed, and the block's integer sums
 * come out one per row and half-block. Per group and block: the G rows' scales d and sums s, and 2G
 * int32 of offset correction in the same lane order (each four rows as 4
 * lanes of the first half-block, then 4 of the second): BLOCK: -off · Σq
 * of the block in the first lanes, 0 in the second; HALVES: -off · Σq of
 * each 16-value half (Q6_K, whose scales differ between the halves). Rows
 * past the end of the input are zeros. */
typedef struct {
	int64_t n, groups; /* values per row; groups of G rows */
	int G;
	int8_t *q;         /* [groups][n / 32][G][32] */
	float *d, *s;      /* [groups][n / 32][G] */
	int32_t *c;        /* [groups][n / 32][2G], or NULL */
	int corr, off;
} sk_q8_group;

/* y[i · ldy + r] = row r0 + r of w · activation row i0 + i, for
 * r < nrows, i < nx (nx <= SK_Q8_MAX_NX). w: the stored rows, row_bytes
 * apart; for NF4, the sk_nf4_tensor, and row_bytes is the row's length
 * in values (its blocks of 64 need not start rows). */
typedef void (*sk_q8_dot_fn)(const void *w, int64_t row_bytes, int64_t r0, int64_t nrows, const sk_q8_rows *x,
                             int64_t i0, int nx, float *y, int64_t ldy);

/* y[i · ldy + r] = row r of w · row G·g + i of x, for r < nrows, i < G
 * (i < rows when the group is the last, partial one). */
typedef void (*sk_q8_tile_fn)(const void *w, int64_t row_bytes, int64_t r0, int64_t nrows, const sk_q8_group *x,
                              int64_t g, float *y, int64_t ldy, int rows);

typedef struct {
	sk_q8_dot_fn dot;
	sk_q8_corr corr;
	int off;
	sk_q8_tile_fn tile, tile4; /* groups of 8 and 4 rows; NULL: dot for every row count */
	sk_q8_corr tile_corr;
	int tile_off;
} sk_q8_kernel;

/* Which kernels run: the best this CPU has unless the environment forces
 * one down (SK_NO_AVX2=1: portable C; SK_NO_AVX512=1: AVX2 maddubs, no
 * VNNI). */
typedef enum { SK_Q8_ISA_PORTABLE, SK_Q8_ISA_AVX2, SK_Q8_ISA_AVXVNNI, SK_Q8_ISA_AVX512VNNI } sk_q8_isa;
sk_q8_isa sk_q8_isa_best(void);
const char *sk_q8_isa_name(sk_q8_isa isa);

/* The kernel for weights of type t on isa (0 when the type has none). */
int sk_q8_kernel_for(sk_dtype t, sk_q8_isa isa, sk_q8_kernel *k);
/* NF4 (engine/format/nf4.h) as integers: each code's value times 127,
 * rounded (sk_q8_nf4_levels), so w = absmax · level / 127: within
 * absmax · SK_Q8_NF4_STEP of the exact NF4 value, on top of the bound of
 * the activations' quantization. Rows of a multiple of 32 values. */
int sk_q8_kernel_nf4(sk_q8_isa isa, sk_q8_kernel *k);
extern const int8_t sk_q8_nf4_levels[16];
#define SK_Q8_NF4_STEP 0.0037f /* max over the codes of |level / 127 - value|: 0.00367 */

/* Bytes of scratch sk_q8_quantize needs for rows × n (64-byte aligned). */
size_t sk_q8_bytes(int64_t rows, int64_t n);
/* Quantizes rows [r0, r1) of x (rows of n floats) into out, whose arrays are
 * carved from mem (sk_q8_bytes of it) by sk_q8_layout; the corr array gets
 * the kernel's correction. The portable and SIMD quantizers give identical
 * bytes. */
void sk_q8_layout(sk_q8_rows *out, void *mem, int64_t rows, int64_t n, sk_q8_corr corr, int off);
void sk_q8_quantize(const float *x, int64_t r0, int64_t r1, sk_q8_rows *out, sk_q8_isa isa);
/* Fills rows [r0, r1) of out's correction array from its quantized values. */
void sk_q8_fill_corr(sk_q8_rows *out, int64_t r0, int64_t r1);

/* Bytes for groups of G rows covering rows × n, and the layout (groups of
 * rows r0.. of the input); sk_q8_group_fill interleaves groups [g0, g1)
 * from quantized rows. */
size_t sk_q8_group_bytes(int64_t rows, int64_t n, int G);
void sk_q8_group_layout(sk_q8_group *out, void *mem, int64_t rows, int64_t n, int G, sk_q8_corr corr, int off);
void sk_q8_group_fill(const sk_q8_rows *x, int64_t r0, int64_t g0, int64_t g1, sk_q8_group *out);

/* The instruction sets' kernels (their files; 0 where not built); t =
 * SK_DT_COUNT asks for the NF4 kernels. */
int sk_q8_kernel_avx2(sk_dtype t, sk_q8_kernel *k);
int sk_q8_kernel_avxvnni(sk_dtype t, sk_q8_kernel *k);
int sk_q8_kernel_avx512vnni(sk_dtype t, sk_q8_kernel *k);
void sk_q8_quantize_avx2(const float *x, int64_t r0, int64_t r1, sk_q8_rows *out);

#endif
