/* Internals shared by the CPU backend's files (not a public header): its
 * state, the per-type row dot kernels and row dequantization. */
#ifndef SK_BACKEND_CPU_H
#define SK_BACKEND_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "engine/backend/backend.h"
#include "engine/threadpool.h"

#define SK_CPU_TILE 64   /* weight rows dequantized per sgemm call */
#define SK_CPU_SMALL 4   /* up to this many input rows: per-row dot products, no sgemm */

typedef struct {
	float *buf;
	size_t cap;  /* floats */
} sk_cpu_scratch;

typedef struct {
	sk_threadpool *pool;
	int nthreads;
	sk_cpu_scratch *scratch;  /* one per thread */
	sk_cpu_scratch lora;      /* LoRA intermediate (caller thread) */
	sk_cpu_scratch q8;        /* a linear's quantized activations (caller thread) */
	sk_cpu_scratch attn;      /* a decode step's attention parts (caller thread) */
	int exact;                /* SK_CPU_EXACT=1: every linear in fp32, as training does */
} sk_cpu;

/* Grows a scratch to hold n floats (+ 64 of slack); NULL on out of memory. */
float *sk_cpu_scratch_get(sk_cpu_scratch *s, size_t n);

/* Dot product of one stored row (n elements) with x, decoded on the fly;
 * NULL when the type has no fused kernel (then dequantize + sk_cpu_sdot). */
typedef float (*sk_cpu_dot_fn)(const void *row, const float *x, int64_t n);
sk_cpu_dot_fn sk_cpu_dot_kernel(sk_dtype t);
float sk_cpu_sdot(const float *a, const float *b, int64_t n);
/* Whether the AVX2+FMA kernels are in use on this machine. */
int sk_cpu_have_avx2(void);

/* x[i] = exp(x[i] - sub) over n floats; returns their sum (backend_cpu_vmath.c). */
double sk_cpu_exp_sub(float *x, int64_t n, float sub);
/* g[i] = gelu_tanh(g[i]) (· u[i] when u) over n floats. */
void sk_cpu_gelu(float *g, const float *u, int64_t n);

/* Dequantizes rows [r0, r0 + nr) of a weight (stored type or NF4) into
 * scratch; returns the pointer to row r0's floats (inside scratch) or NULL. */
const float *sk_cpu_weight_rows(const sk_tensor *w, int64_t r0, int64_t nr, sk_cpu_scratch *s);

/* The AVX2 kernels (backend_cpu_avx2.c); NULL for types it lacks. */
sk_cpu_dot_fn sk_cpu_dot_kernel_avx2(sk_dtype t);
float sk_cpu_sdot_avx2(const float *a, const float *b, int64_t n);

/* ops in their files */
int sk_cpu_linear(sk_backend *be, const sk_tensor *w, const float *x, int64_t n, float *y,
                  const sk_lora_pair *lora, const uint8_t *lora_rows);
int sk_cpu_linear2(sk_backend *be, const sk_tensor *w1, const sk_tensor *w2, const float *x, int64_t n, float *y1,
                   float *y2, const sk_lora_pair *l1, const sk_lora_pair *l2, const uint8_t *lora_rows);
/* The linear of training and of SK_CPU_EXACT: weights dequantized, fp32 activations. */
int sk_cpu_linear_exact(sk_backend *be, const sk_tensor *w, const float *x, int64_t n, float *y,
                        const sk_lora_pair *lora, const uint8_t *lora_rows);
/* Quantized weights by integer dot products (backend_cpu_linear_q8.c): 1
 * done, 0 when w has no integer kernel (then fp32), -1 out of memory. */
int sk_cpu_linear_q8(sk_cpu *c, const sk_tensor *w, const float *x, int64_t n, float *y);
int sk_cpu_linear2_q8(sk_cpu *c, const sk_tensor *w1, const sk_tensor *w2, const float *x, int64_t n, float *y1,
                      float *y2);
int sk_cpu_embed(sk_backend *be, const sk_tensor *table, const int32_t *ids, int64_t n, float scale, float *out);
void sk_cpu_rmsnorm(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *w, float eps, float *y);
void sk_cpu_norm_add(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *w, float eps,
                     const float *a, const float *b, float scale, float *y);
void sk_cpu_norm_rope(sk_backend *be, const float *x, int64_t n, int heads, int hd, const float *w, float eps,
                      const int32_t *pos, float theta, float factor, float *y);
void sk_cpu_rope(sk_backend *be, float *x, int64_t n, int heads, int hd, const int32_t *pos, float theta, float factor);
/* The rotation of RoPE (sign 1) and its transpose (sign -1, the backward). */
void sk_cpu_rope_rotate(float *x, int64_t n, int heads, int hd, const int32_t *pos, float theta, float factor,
                        float sign);
int sk_cpu_attention(sk_backend *be, const float *q, int64_t n, const sk_attn_kv *kv, int nh, int nkv, int hd,
                      int window, float scale, float softcap, float *out);
/* The exact table's attention and GELU: the previous one-key-at-a-time
 * attention and libm tanh, bit for bit what training was validated on. */
int sk_cpu_attention_ref(sk_backend *be, const float *q, int64_t n, const sk_attn_kv *kv, int nh, int nkv, int hd,
                         int window, float scale, float softcap, float *out);
void sk_cpu_gelu_mul_ref(sk_backend *be, float *g, const float *u, int64_t u_stride, int64_t rows, int64_t dim,
                         float sparsity_z);
void sk_cpu_add(sk_backend *be, const float *a, const float *b, int64_t count, float scale, float *y);
void sk_cpu_mul_rows(sk_backend *be, const float *x, const float *w, int64_t w_stride, int64_t rows, int64_t dim,
                     float *y);
void *sk_cpu_alloc(sk_backend *be, size_t bytes, const char *what);
void sk_cpu_free(sk_backend *be, void *p);
int sk_cpu_copy_bytes(sk_backend *be, void *dst, const void *src, size_t bytes);
void sk_cpu_scale(sk_backend *be, const float *x, int64_t count, float s, float *y);
void sk_cpu_zero(sk_backend *be, float *x, int64_t count);
void sk_cpu_gather_rows(sk_backend *be, const float *x, int64_t dim, const int64_t *idx, int64_t n, float *y);
void sk_cpu_scatter_rows(sk_backend *be, const float *x, int64_t dim, const int64_t *idx, int64_t n, float *y);
void sk_cpu_ring_write(sk_backend *be, const float *x, int64_t n, int64_t dim, float *ring, int64_t cap,
                       const int32_t *pos);
void sk_cpu_gelu_mul(sk_backend *be, float *g, const float *u, int64_t u_stride, int64_t rows, int64_t dim,
                     float sparsity_z);
void sk_cpu_softcap(sk_backend *be, float *x, int64_t count, float cap);
void sk_cpu_rescale_rms(sk_backend *be, float *u, const float *ref, int64_t rows, int64_t dim);
void sk_cpu_altup_router(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *norm_w, float eps,
                         const float *w, int A, float *out);
void sk_cpu_altup_predict(sk_backend *be, const float *x, int64_t rows, int64_t dim, int A, const float *wp,
                          const float *modal, float *p);
void sk_cpu_altup_correct(sk_backend *be, const float *p, const float *y, int64_t rows, int64_t dim, int A,
                          int active, const float *wc, const float *modal, float *c);

/* out = W v for a small row-major W (rows x cols), summed in fp32 in order:
 * the per-token AltUp coefficients of predict and correct. */
static inline void sk_cpu_small_matvec(const float *w, const float *v, int rows, int cols, float *out)
{
	for (int q = 0; q < rows; q++) {
		float s = 0;
		for (int k = 0; k < cols; k++)
			s += w[q * cols + k] * v[k];
		out[q] = s;
	}
}

static inline sk_cpu *sk_cpu_of(sk_backend *be)
{
	return (sk_cpu *)be->impl;
}

#endif
