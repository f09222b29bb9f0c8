/* The CUDA backend's state, shared by its host-side files (backend_cuda.c:
 * memory, weights, the forward ops; backend_cuda_train.c: the adapter being
 * trained; backend_cuda_backward.c: the training ops). Not a public header. */
#ifndef SK_BACKEND_CUDA_INTERNAL_H
#define SK_BACKEND_CUDA_INTERNAL_H

#include "engine/backend/backend_cuda.h"
#include "engine/model/lora_internal.h"

/* Every device and pinned allocation the backend made for weights, freed with it. */
typedef struct {
	void *p;
	int host;
} owned;

typedef struct {
	sk_cuda *c;
	owned *own;
	size_t n_own, cap_own;
	sk_cuda_weight **weights;
	size_t n_w, cap_w;
	/* the adapter set with set_adapter: its pairs and their device copies */
	const sk_lora *lora;
	sk_cuda_lora *dpairs;   /* parallel to lora->pairs */
	float *dfactors;        /* one allocation for every A and B */
	/* the adapter being trained (sk_model_train_begin): its factors' device
	 * copies and their gradients, accumulated on the device */
	const sk_lora *train;
	sk_cuda_lora *tpairs;   /* parallel to train->pairs */
	float **tgrad_a, **tgrad_b;
	float *tmem;            /* one allocation for every factor and gradient */
	size_t tmem_floats;
	/* its optimizer, when the device keeps it (backend_cuda_optim.c): the
	 * states, the quantization maps, the tensor table and the norm sums in
	 * one allocation */
	const struct sk_optim *opt;
	void *omem;
	sk_cuda_optim_tensor *otab, *otab_host;
	int onum;
	int64_t oblocks;
	float *omaps;
	double *osums, *osums_host;
	/* row slices of weights (slice_rows), reused in turn: an op reads its
	 * weight record when it is called, never later */
	sk_cuda_weight slices[8];
	int next_slice;
} cuda_be;

/* The row spans in the kernels' type (free them); NULL (error set) when out of memory. */
sk_cuda_span *sk_cuda_be_spans(const sk_row_span *spans, int n);

/* sk_fail with the kernels' last message; returns -1. */
int sk_cuda_be_fail(sk_backend *be);

/* Times an op alone when profiling (SK_CUDA_PROFILE=1). */
#define PROF(be, name, call)                                    \
	do {                                                    \
		sk_cuda *c_ = ((cuda_be *)(be)->impl)->c;       \
		sk_cuda_prof_begin(c_);                         \
		call;                                           \
		sk_cuda_prof_end(c_, name);                     \
	} while (0)

/* The device copy of a LoRA pair: of the adapter being trained when the
 * pair is one of its own, else of the adapter set for inference; NULL
 * (with *bad set) for a pair of neither. */
const sk_cuda_lora *sk_cuda_be_pair(sk_backend *be, const sk_lora_pair *lp, int *bad);
/* The device gradients (A's when is_b is 0) of a pair of the adapter being
 * trained; NULL for any other pair. */
float *sk_cuda_be_grad(sk_backend *be, const sk_lora_pair *lp, int is_b);

/* The training ops (backend_cuda_train.c), for the ops table. */
int sk_cuda_train_begin(sk_backend *be, const sk_lora *l);
int sk_cuda_train_upload(sk_backend *be);
int sk_cuda_train_download_grads(sk_backend *be);
void sk_cuda_train_free(sk_backend *be);
/* The optimizer on the device (backend_cuda_optim.c). */
int sk_cuda_train_optim_begin(sk_backend *be, struct sk_optim *o);
int sk_cuda_train_optim_step(sk_backend *be, struct sk_optim *o, double lr, float max_norm, float *norm);
int sk_cuda_train_optim_sync(sk_backend *be, struct sk_optim *o);
void sk_cuda_optim_drop(cuda_be *b);

/* The backward ops (backend_cuda_backward.c). */
int sk_cuda_op_linear_lora_fwd(sk_backend *be, const sk_tensor *w, const float *x, int64_t n, float *y,
                               const sk_lora_pair *l, float dropout, uint64_t seed);
int sk_cuda_op_lora_fwd(sk_backend *be, const sk_lora_pair *l, const float *x, int64_t n, float dropout,
                        uint64_t seed, float *y);
int sk_cuda_op_lora_bwd(sk_backend *be, const sk_lora_pair *l, const float *x, const float *dy, int64_t n,
                        float dropout, uint64_t seed, float *gA, float *gB, float *dx);
int sk_cuda_op_linear_bwd(sk_backend *be, const sk_tensor *w, const float *dy, int64_t n, float *dx, int accumulate);
int sk_cuda_op_linear_lora_bwd(sk_backend *be, const sk_tensor *w, const sk_lora_pair *l, const float *x,
                               const float *dy, int64_t n, float dropout, uint64_t seed, float *gA, float *gB,
                               float *dx, int accumulate);
void sk_cuda_op_rmsnorm_bwd(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *w, float eps,
                            const float *dy, float *dx, int accumulate);
void sk_cuda_op_rope_bwd(sk_backend *be, float *d, int64_t n, int heads, int hd, const int32_t *pos, float theta,
                         float factor);
int sk_cuda_op_attention_bwd(sk_backend *be, const float *q, const float *k, const float *v, int64_t n, int nh,
                             int nkv, int hd, int window, float scale, float softcap, const float *dout, float *dq,
                             float *dk, float *dv, float *ws);
int sk_cuda_op_attention_bwd_spans(sk_backend *be, const float *q, const float *k, const float *v,
                                   const sk_row_span *spans, int n_spans, int nh, int nkv, int hd, int window,
                                   float scale, float softcap, const float *dout, float *dq, float *dk, float *dv,
                                   float *ws);
int sk_cuda_op_gated_bwd(sk_backend *be, const sk_gated_bwd *a);
int sk_cuda_op_gated_mlp(sk_backend *be, const sk_gated_mlp *a);
int sk_cuda_op_gated_mlp_bwd(sk_backend *be, const sk_gated_mlp_bwd *a);
void sk_cuda_op_gelu_mul_bwd(sk_backend *be, const float *g, const float *u, int64_t rows, int64_t dim,
                             float sparsity_z, const float *dh, float *dg, float *du);
void sk_cuda_op_rescale_rms_bwd(sk_backend *be, const float *u, const float *ref, int64_t rows, int64_t dim,
                                const float *dy, float *du, float *dref);
void sk_cuda_op_altup_router_bwd(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *norm_w,
                                 float eps, const float *w, int A, const float *out, const float *dout, float *dx);
void sk_cuda_op_altup_predict_bwd(sk_backend *be, const float *x, int64_t rows, int64_t dim, int A, const float *wp,
                                  const float *modal, const float *dp, float *dx, float *dmodal);
void sk_cuda_op_altup_correct_bwd(sk_backend *be, const float *p, const float *y, int64_t rows, int64_t dim, int A,
                                  int active, const float *wc, const float *modal, const float *dc, float *dp,
                                  float *dy, float *dmodal);
void sk_cuda_op_xent_chunk(sk_backend *be, float *z, int64_t n, int64_t cw, int64_t col0, float cap,
                           const int32_t *labels, float *mx, float *se, float *lab);
void sk_cuda_op_xent_chunk_grad(sk_backend *be, float *z, int64_t n, int64_t cw, int64_t col0, float cap,
                                const int32_t *labels, const float *lse, const float *coef);
int sk_cuda_op_head_lse(sk_backend *be, const sk_tensor *embed, int64_t V, const float *hn, int64_t n, int64_t cw,
                        float cap, const int32_t *labels, float *z, float *mx, float *se, float *lab);
int sk_cuda_op_head_grad(sk_backend *be, const sk_tensor *embed, int64_t V, const float *hn, int64_t n, int64_t cw,
                         float cap, const int32_t *labels, const float *lse, const float *coef, float *z,
                         float *dhn);

/* The table entries, for backend_cuda.c's cuda_ops initializer. */
#define SK_CUDA_BACKWARD_OPS                                                                                   \
	.lora_fwd = sk_cuda_op_lora_fwd, .linear_lora_fwd = sk_cuda_op_linear_lora_fwd,                         \
	.lora_bwd = sk_cuda_op_lora_bwd, .linear_bwd = sk_cuda_op_linear_bwd,                                    \
	.linear_lora_bwd = sk_cuda_op_linear_lora_bwd,                                                          \
	.rmsnorm_bwd = sk_cuda_op_rmsnorm_bwd, .rope_bwd = sk_cuda_op_rope_bwd,                                  \
	.attention_bwd = sk_cuda_op_attention_bwd, .attention_bwd_spans = sk_cuda_op_attention_bwd_spans,        \
	.gelu_mul_bwd = sk_cuda_op_gelu_mul_bwd,                                                                \
	.gated_bwd = sk_cuda_op_gated_bwd, .gated_mlp = sk_cuda_op_gated_mlp,                                   \
	.gated_mlp_bwd = sk_cuda_op_gated_mlp_bwd,                                                              \
	.rescale_rms_bwd = sk_cuda_op_rescale_rms_bwd, .altup_router_bwd = sk_cuda_op_altup_router_bwd,          \
	.altup_predict_bwd = sk_cuda_op_altup_predict_bwd, .altup_correct_bwd = sk_cuda_op_altup_correct_bwd,    \
	.xent_chunk = sk_cuda_op_xent_chunk, .xent_chunk_grad = sk_cuda_op_xent_chunk_grad,                      \
	.head_lse = sk_cuda_op_head_lse, .head_grad = sk_cuda_op_head_grad

#endif
