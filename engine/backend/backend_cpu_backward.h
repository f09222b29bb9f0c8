/* The CPU backend's training ops (backend_cpu_backward*.c): the LoRA
 * branch with dropout and the backward of every forward op. Not a public
 * header. */
#ifndef SK_BACKEND_CPU_BACKWARD_H
#define SK_BACKEND_CPU_BACKWARD_H

#include "engine/backend/backend_cpu.h"

int sk_cpu_lora_fwd(sk_backend *be, const sk_lora_pair *l, const float *x, int64_t n, float dropout, uint64_t seed,
                    float *y);
int sk_cpu_lora_bwd(sk_backend *be, const sk_lora_pair *l, const float *x, const float *dy, int64_t n, float dropout,
                    uint64_t seed, float *gA, float *gB, float *dx);
int sk_cpu_linear_bwd(sk_backend *be, const sk_tensor *w, const float *dy, int64_t n, float *dx, int accumulate);
void sk_cpu_rmsnorm_bwd(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *w, float eps,
                        const float *dy, float *dx, int accumulate);
void sk_cpu_rope_bwd(sk_backend *be, float *d, int64_t n, int heads, int hd, const int32_t *pos, float theta,
                     float factor);
int sk_cpu_attention_bwd(sk_backend *be, const float *q, const float *k, const float *v, int64_t n, int nh, int nkv,
                         int hd, int window, float scale, float softcap, const float *dout, float *dq, float *dk,
                         float *dv, float *ws);
void sk_cpu_gelu_mul_bwd(sk_backend *be, const float *g, const float *u, int64_t rows, int64_t dim, float sparsity_z,
                         const float *dh, float *dg, float *du);
void sk_cpu_rescale_rms_bwd(sk_backend *be, const float *u, const float *ref, int64_t rows, int64_t dim,
                            const float *dy, float *du, float *dref);
void sk_cpu_altup_router_bwd(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *norm_w, float eps,
                             const float *w, int A, const float *out, const float *dout, float *dx);
void sk_cpu_altup_predict_bwd(sk_backend *be, const float *x, int64_t rows, int64_t dim, int A, const float *wp,
                              const float *modal, const float *dp, float *dx, float *dmodal);
void sk_cpu_altup_correct_bwd(sk_backend *be, const float *p, const float *y, int64_t rows, int64_t dim, int A,
                              int active, const float *wc, const float *modal, const float *dc, float *dp, float *dy,
                              float *dmodal);
void sk_cpu_xent_chunk(sk_backend *be, float *z, int64_t n, int64_t cw, int64_t col0, float cap,
                       const int32_t *labels, float *mx, float *se, float *lab);
void sk_cpu_xent_chunk_grad(sk_backend *be, float *z, int64_t n, int64_t cw, int64_t col0, float cap,
                            const int32_t *labels, const float *lse, const float *coef);

/* The table entries, for backend_cpu.c's cpu_ops initializer. */
#define SK_CPU_BACKWARD_OPS                                                                            \
	.lora_fwd = sk_cpu_lora_fwd, .lora_bwd = sk_cpu_lora_bwd, .linear_bwd = sk_cpu_linear_bwd,       \
	.rmsnorm_bwd = sk_cpu_rmsnorm_bwd, .rope_bwd = sk_cpu_rope_bwd,                                  \
	.attention_bwd = sk_cpu_attention_bwd, .gelu_mul_bwd = sk_cpu_gelu_mul_bwd,                      \
	.rescale_rms_bwd = sk_cpu_rescale_rms_bwd, .altup_router_bwd = sk_cpu_altup_router_bwd,          \
	.altup_predict_bwd = sk_cpu_altup_predict_bwd, .altup_correct_bwd = sk_cpu_altup_correct_bwd,    \
	.xent_chunk = sk_cpu_xent_chunk, .xent_chunk_grad = sk_cpu_xent_chunk_grad


/* Whether dropout keeps element (row, col) for this seed (a pure hash). */
int sk_dropout_keep(uint64_t seed, int64_t row, int64_t col, float p);

#endif
