/* The CUDA kernels' plain C interface. Built from the .cu files in this
 * folder when CUDA is configured; otherwise kernels_none.c answers that the
 * backend is not built. Nothing here includes engine headers.
 *
 * Every call after sk_cuda_open runs on the context's one stream, in
 * order. Calls that return int give 0, or -1 with a message in
 * sk_cuda_error(); void calls record a failure that the next int call (or
 * sk_cuda_check) reports. Activations are fp32, weights bf16 or NF4. */
#ifndef SK_KERNELS_H
#define SK_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when this binary was built with the CUDA backend. */
int sk_cuda_built(void);

/* Number of usable CUDA devices (0 when none, the driver is missing, or the
 * backend is not built); when 0, why is written to reason. */
int sk_cuda_probe(char *reason, size_t cap);

/* Name, memory and compute capability of device dev, as one line. */
int sk_cuda_describe(int dev, char *buf, size_t cap);

/* bf16 -> f32 on the device, between device buffers, on the given stream
 * (NULL = default stream). Returns 0, or -1 with a message in err. */
int sk_cuda_bf16_to_f32(const uint16_t *d_src, float *d_dst, size_t n, void *stream,
                        char *err, size_t cap);

/* Same conversion for host buffers (copies in and out): used by the parity
 * test against the CPU conversion. */
int sk_cuda_bf16_to_f32_host(const uint16_t *src, float *dst, size_t n, char *err, size_t cap);

/* ---- Context ---- */

typedef struct sk_cuda sk_cuda;

/* Opens device dev: a stream, a cuBLASLt handle, the constant tables.
 * NULL with the reason in err. */
sk_cuda *sk_cuda_open(int dev, char *err, size_t cap);
void sk_cuda_close(sk_cuda *c);
/* The last failure's message ("" when none). */
const char *sk_cuda_error(const sk_cuda *c);
/* Waits for the stream; 0, or -1 when anything queued so far failed. */
int sk_cuda_sync(sk_cuda *c);
/* 0, or -1 when a void call failed since the last check (then cleared). */
int sk_cuda_check(sk_cuda *c);
/* Device-to-device copy bandwidth, bytes read plus written per second,
 * over buffers of the given size (the median of a few copies); 0 on error. */
double sk_cuda_copy_bandwidth(sk_cuda *c, size_t bytes);
/* Free and total device memory. */
void sk_cuda_mem_info(sk_cuda *c, uint64_t *free_bytes, uint64_t *total_bytes);

/* ---- Memory ---- */

/* Zeroed device memory; NULL with a message naming what, how much and the
 * device's free/total. */
void *sk_cuda_alloc(sk_cuda *c, size_t bytes, const char *what);
void sk_cuda_free(sk_cuda *c, void *p);
/* Pinned host memory the device reads directly; its device address in *dev. */
void *sk_cuda_host_alloc(sk_cuda *c, size_t bytes, const char *what, void **dev);
void sk_cuda_host_free(sk_cuda *c, void *p);
/* Host → device copy, queued (the source may be reused at once); device →
 * host copy, waited for. */
int sk_cuda_upload(sk_cuda *c, void *dst, const void *src, size_t bytes);
int sk_cuda_download(sk_cuda *c, void *dst, const void *src, size_t bytes);
/* Device → device copy, queued. */
int sk_cuda_copy(sk_cuda *c, void *dst, const void *src, size_t bytes);

/* ---- Recording a sequence of calls as a CUDA graph and replaying it ---- */

/* 1: the graph recorded under key was launched (skip the calls); 0: run the
 * calls, recorded when key was seen before; -1 on error. */
int sk_cuda_record_begin(sk_cuda *c, uint64_t key);
/* Ends a recording started by record_begin (ok 0 drops it) and launches it:
 * 0, -1 on error, or 1 when the recording failed and nothing ran (the
 * caller makes the calls again; they are not recorded again). */
int sk_cuda_record_end(sk_cuda *c, int ok);
void sk_cuda_record_drop(sk_cuda *c);
/* Number of kernel nodes of the graph recorded last (0 when none). */
int sk_cuda_record_nodes(const sk_cuda *c);

/* ---- Profile: with SK_CUDA_PROFILE=1 in the environment, each op is timed
 * alone (the stream waits after it; nothing is recorded as a graph) ---- */

int sk_cuda_profiling(const sk_cuda *c);
void sk_cuda_prof_begin(sk_cuda *c);
void sk_cuda_prof_end(sk_cuda *c, const char *name);
/* One line per op name: calls, total and mean GPU time, share; then resets. */
void sk_cuda_prof_report(sk_cuda *c, void *file);

/* ---- Weights ---- */

enum { SK_CUDA_W_BF16 = 1, SK_CUDA_W_NF4 = 2 };

/* A weight matrix [rows, cols] on the device (or in mapped host memory). */
typedef struct {
	int kind;
	int64_t rows, cols;
	const uint16_t *bf16;        /* SK_CUDA_W_BF16: [rows][cols] */
	const uint8_t *packed;       /* SK_CUDA_W_NF4: two codes a byte, the even element high */
	const uint8_t *absmax_q;     /* per 64 elements, into the signed dynamic map (double quantization) */
	const float *nested;         /* per 256 blocks */
	float offset;
	const float *absmax;         /* per 64 elements, without double quantization (absmax_q NULL) */
} sk_cuda_weight;

/* A LoRA pair on the device: A [r][in], B [out][r], fp32. */
typedef struct {
	const float *A, *B;
	int r, in, out;
	float scale;
} sk_cuda_lora;

/* ---- Forward ops (the backend ops table's meaning, engine/backend/backend.h) ---- */

int sk_cuda_linear(sk_cuda *c, const sk_cuda_weight *w, const float *x, int64_t n, float *y, const sk_cuda_lora *l,
                   const uint8_t *rows);
/* Two linears of one input (k and v, gate and up) in one launch when they
 * are read a row at a time alike; else one after the other. */
int sk_cuda_linear2(sk_cuda *c, const sk_cuda_weight *w1, const sk_cuda_weight *w2, const float *x, int64_t n,
                    float *y1, float *y2, const sk_cuda_lora *l1, const sk_cuda_lora *l2, const uint8_t *rows);
/* table: bf16 [V][dim] (device or mapped host memory). */
int sk_cuda_embed(sk_cuda *c, const uint16_t *table, int64_t dim, const int32_t *ids, int64_t n, float scale,
                  float *out);
void sk_cuda_rmsnorm(sk_cuda *c, const float *x, int64_t rows, int64_t dim, const float *w, float eps, float *y);
void sk_cuda_norm_add(sk_cuda *c, const float *x, int64_t rows, int64_t dim, const float *w, float eps,
                      const float *a, const float *b, float scale, float *y);
/* y_k += RMSNorm(x; w) for each of A streams [rows][dim] at y + k·rows·dim but skip. */
void sk_cuda_norm_add_streams(sk_cuda *c, const float *x, int64_t rows, int64_t dim, const float *w, float eps,
                              float *y, int A, int skip);
void sk_cuda_norm_rope(sk_cuda *c, const float *x, int64_t n, int heads, int hd, const float *w, float eps,
                       const int32_t *pos, float theta, float factor, float *y);
/* lam = cc + RMSNorm(z; wz) (z NULL: no lam term); y = ((a + RMSNorm(x; wx)) + lam) · scale;
 * yn = RMSNorm(y; wy): one launch, rounded as norm_add, norm_add and rmsnorm. */
void sk_cuda_norm_add_norm(sk_cuda *c, int64_t rows, int64_t dim, float eps, const float *x, const float *wx,
                           const float *a, const float *z, const float *wz, const float *cc, float *lam, float scale,
                           float *y, const float *wy, float *yn);
/* norm_rope of q (nh heads) and of k (nkv heads), and v normed per head without a
 * weight, in one launch (k NULL: q alone). */
void sk_cuda_norm_rope_qkv(sk_cuda *c, int64_t n, int hd, float eps, const int32_t *pos, float theta, float factor,
                           const float *q, int nh, const float *qw, float *qo, const float *k, const float *v, int nkv,
                           const float *kw, float *ko, float *vo);
void sk_cuda_rope(sk_cuda *c, float *x, int64_t n, int heads, int hd, const int32_t *pos, float theta, float factor);
/* One sequence: n query rows at positions pos[0] .. pos[0] + n - 1; keys
 * from the ring k_past/v_past [cap][nkv·hd] (positions ≥ pos[0] - cap, none
 * when k_past is NULL) and the new k_new/v_new [n][nkv·hd]. */
int sk_cuda_attention(sk_cuda *c, const float *q, int64_t n, const int32_t *pos, const float *k_past,
                      const float *v_past, int64_t cap, const float *k_new, const float *v_new, int nh, int nkv,
                      int hd, int window, float scale, float softcap, float *out);
void sk_cuda_add(sk_cuda *c, const float *a, const float *b, int64_t count, float scale, float *y);
void sk_cuda_scale(sk_cuda *c, const float *x, int64_t count, float s, float *y);
void sk_cuda_zero(sk_cuda *c, float *x, int64_t count);
void sk_cuda_mul_rows(sk_cuda *c, const float *x, const float *w, int64_t w_stride, int64_t rows, int64_t dim,
                      float *y);
/* n floats to bf16 (round to nearest even) and back: training's kept layer inputs. */
void sk_cuda_pack_bf16(sk_cuda *c, const float *x, int64_t n, uint16_t *y);
void sk_cuda_unpack_bf16(sk_cuda *c, const uint16_t *y, int64_t n, float *x);
void sk_cuda_gelu_mul(sk_cuda *c, const float *g, const float *u, int64_t u_stride, int64_t rows, int64_t dim,
                      float sparsity_z, float *out);
void sk_cuda_softcap(sk_cuda *c, float *x, int64_t count, float cap);
void sk_cuda_rescale_rms(sk_cuda *c, float *u, const float *ref, int64_t rows, int64_t dim);
void sk_cuda_gather_rows(sk_cuda *c, const float *x, int64_t dim, const int64_t *idx, int64_t n, float *y);
void sk_cuda_scatter_rows(sk_cuda *c, const float *x, int64_t dim, const int64_t *idx, int64_t n, float *y);
void sk_cuda_ring_write(sk_cuda *c, const float *x, int64_t n, int64_t dim, float *ring, int64_t cap,
                        const int32_t *pos);
/* count ring writes of the same rows (backend.h's ring_write_many), up to
 * SK_CUDA_RING_MANY a launch. */
#define SK_CUDA_RING_MANY 64
typedef struct {
	const float *x;
	float *ring;
	int64_t cap;
} sk_cuda_ring_dst;
void sk_cuda_ring_write_many(sk_cuda *c, int64_t n, int64_t dim, const int32_t *pos, const sk_cuda_ring_dst *d,
                             int count);
void sk_cuda_altup_router(sk_cuda *c, const float *x, int64_t rows, int64_t dim, const float *norm_w, float eps,
                          const float *w, int A, float *out);
void sk_cuda_altup_predict(sk_cuda *c, const float *x, int64_t rows, int64_t dim, int A, const float *wp,
                           const float *modal, float *p);
void sk_cuda_altup_correct(sk_cuda *c, const float *p, const float *y, int64_t rows, int64_t dim, int A, int active,
                           const float *wc, const float *modal, float *out);
/* Router then predict (the router over stream active of x), and router over y
 * then correct: one launch each where A is 4, as the separate calls compute.
 * The prediction also writes nrm = RMSNorm(p_active; nw) when nrm is not NULL. */
void sk_cuda_altup_router_predict(sk_cuda *c, const float *x, int64_t rows, int64_t dim, int active,
                                  const float *norm_w, float eps, const float *w, int A, const float *wp, float *modal,
                                  float *p, const float *nw, float *nrm);
void sk_cuda_altup_router_correct(sk_cuda *c, const float *p, const float *y, int64_t rows, int64_t dim, int active,
                                  const float *norm_w, float eps, const float *w, int A, const float *wc, float *modal,
                                  float *out);
/* y = h + RMSNorm(f; fw), then router over y and correct into out, then
 * vin = out_active ⊙ vs (vs NULL: a copy; vin NULL: none): one launch where A is 4. */
void sk_cuda_altup_norm_add_correct(sk_cuda *c, int64_t rows, int64_t dim, int A, int active, float eps,
                                    const float *f, const float *fw, const float *h, float *y, const float *p,
                                    const float *norm_w, const float *w, const float *wc, float *modal, float *out,
                                    const float *vs, float *vin);

/* ---- The optimizer of the adapter being trained (engine/train/optim.h's
 * AdamW8bit, same state layout): one entry per tensor, its blocks of 256
 * elements numbered from blk0 in the launch. ---- */
typedef struct {
	float *p, *g;               /* parameter, gradient (zeroed by the update) */
	uint8_t *state1, *state2;   /* 8-bit codes (eight_bit) */
	float *absmax1, *absmax2;   /* [ceil(n / 256)] (eight_bit) */
	float *m, *v;               /* fp32 states (!eight_bit) */
	int64_t n, blk0;
	int eight_bit;
} sk_cuda_optim_tensor;

/* The step's scalars, as engine/train/optim_adamw8bit.c computes them. */
typedef struct {
	float beta1, beta2, ob1, ob2, eps, weight_decay, gnorm_scale, c2, step_size, decay;
} sk_cuda_adam;

/* sums[i] = Σ g² of tensor i, in double (T and sums device memory; blocks =
 * the blocks of all tensors). */
int sk_cuda_grad_sq(sk_cuda *c, const sk_cuda_optim_tensor *T, int nt, int64_t blocks, double *sums);
/* One AdamW8bit step of every tensor with gradients scaled by coef; maps:
 * the signed then the unsigned dynamic map (512 floats, device). apply 0:
 * the gradients are only zeroed (a skipped step). */
int sk_cuda_adamw8bit(sk_cuda *c, const sk_cuda_optim_tensor *T, int nt, int64_t blocks, const float *maps,
                      const sk_cuda_adam *s, float coef, int apply);

/* ---- Training ops (the training section of engine/backend/backend.h;
 * every pointer a device pointer; "accumulate" adds to the output) ---- */

/* y[n][l->out] += scale · B A drop(x) over every row (dropout 0: x as is);
 * the mask is the CPU's hash of (seed, row, column), bit for bit. */
int sk_cuda_lora_fwd(sk_cuda *c, const sk_cuda_lora *l, const float *x, int64_t n, float dropout, uint64_t seed,
                     float *y);
/* y[n][w->rows] = x · Wᵀ + scale · B A drop(x) as one product over the
 * weight with scale · B appended to its columns, when SK_CUDA_LORA_FOLD=1
 * and the shapes allow it (more than 8 rows, r <= 8): 1 done, 0 not taken
 * (the caller runs sk_cuda_linear and sk_cuda_lora_fwd), -1 error. */
int sk_cuda_linear_lora_fold(sk_cuda *c, const sk_cuda_weight *w, const float *x, int64_t n, float *y,
                             const sk_cuda_lora *l, float dropout, uint64_t seed);
/* 1 when SK_CUDA_LORA_FOLD=1 asked for it (and SK_CUDA_EXACT did not forbid it). */
int sk_cuda_lora_fold_on(const sk_cuda *c);
/* Its backward: gB += scale · dyᵀ t, gA += dtᵀ drop(x) (t = A drop(x),
 * dt = scale · dy B), dx += drop'(dt A); gA, gB, dx may each be NULL. */
int sk_cuda_lora_bwd(sk_cuda *c, const sk_cuda_lora *l, const float *x, const float *dy, int64_t n, float dropout,
                     uint64_t seed, float *gA, float *gB, float *dx);
/* sk_cuda_linear_bwd and sk_cuda_lora_bwd of one projection in one call,
 * (unless SK_CUDA_LORA_BWD=0) when the shapes allow it (r <= 8, widths multiples
 * of 8, every output wanted): dy's bf16 copy feeds the branch's products
 * over the outputs too. 1 done, 0 not taken (the caller makes the two
 * calls), -1 error. */
int sk_cuda_linear_lora_bwd(sk_cuda *c, const sk_cuda_weight *w, const sk_cuda_lora *l, const float *x,
                            const float *dy, int64_t n, float dropout, uint64_t seed, float *gA, float *gB, float *dx,
                            int accumulate);
/* The gated GELU's backward (sk_cuda_gelu_mul_bwd of g, u, dh) fed
 * straight into the backward of the two projections w[0] (gate, dy = dL/dg)
 * and w[1] (up, dL/du) of x with their LoRA pairs, as two
 * sk_cuda_linear_lora_bwd calls would, dx overwritten with the sum: the two
 * gradients only ever in bf16, in the rows the products read. tmp [n][dim]:
 * fp32 room for the sparsity cutoff's correction. 1 done, 0 not taken
 * (SK_CUDA_GATED_BWD=0, or a shape sk_cuda_linear_lora_bwd would not take;
 * nothing was written), -1 error. */
typedef struct {
	const float *g, *u, *dh;
	int64_t n, dim;
	float sparsity_z;
	float *tmp;
	const float *x;
	const sk_cuda_weight *w[2];
	const sk_cuda_lora *l[2];
	float dropout;
	uint64_t seed[2];
	float *gA[2], *gB[2];
	float *dx;
	int in16; /* g, u and dh are bf16 rows (the fused MLP's, gated_mlp.cu): tmp unused, never declined */
} sk_cuda_gated_bwd;
int sk_cuda_gelu_lora_bwd2(sk_cuda *c, const sk_cuda_gated_bwd *a);
/* Training's gated MLP, y [n][H] = down(gelu(gate(x)) ⊙ up(x)) with the
 * three projections' LoRA pairs (w, l: gate, up, down), for a forward whose
 * gate, up and gated outputs nothing reads again (gated_mlp.cu): those stay
 * bf16 in the scratch. 1 done, 0 not taken (SK_CUDA_MLP_FUSED unset,
 * dropout, a shape or a weight it does not take; nothing written), -1 error. */
typedef struct {
	const sk_cuda_weight *w[3];
	const sk_cuda_lora *l[3];
	const float *x;
	int64_t n;
	float dropout, sparsity_z;
	float *y;
	/* y NULL: the forward computed again for the backward, down's output
	 * kept: gate's and up's outputs and [z | A z] are left in bf16 in these
	 * (room for [n][F] floats each) for sk_cuda_gated_mlp_backward, which
	 * then takes the MLP's backward (1 returned: it will) */
	void *g, *u, *z;
} sk_cuda_gated_mlp;
int sk_cuda_gated_mlp_fwd(sk_cuda *c, const sk_cuda_gated_mlp *a);
/* The backward of such a saved MLP from dy = dL/d(down's output): the three
 * pairs' gradients added, dx [n][H] = dL/dx overwritten; work [n][F] fp32
 * room. 0 or -1 (never declined). */
typedef struct {
	const sk_cuda_weight *w[3];
	const sk_cuda_lora *l[3];
	const float *x;
	int64_t n;
	float sparsity_z;
	const void *g, *u, *z;
	const float *dy;
	float *gA[3], *gB[3];
	float *dx, *work;
} sk_cuda_gated_mlp_bwd;
int sk_cuda_gated_mlp_backward(sk_cuda *c, const sk_cuda_gated_mlp_bwd *a);
/* dx[n][w->cols] (+)= dy[n][w->rows] · W. */
int sk_cuda_linear_bwd(sk_cuda *c, const sk_cuda_weight *w, const float *dy, int64_t n, float *dx, int accumulate);
void sk_cuda_rmsnorm_bwd(sk_cuda *c, const float *x, int64_t rows, int64_t dim, const float *w, float eps,
                         const float *dy, float *dx, int accumulate);
void sk_cuda_rope_bwd(sk_cuda *c, float *d, int64_t n, int heads, int hd, const int32_t *pos, float theta,
                      float factor);
/* One sequence of n rows at positions 0..n-1 without a cache; dq
 * overwritten, dk and dv accumulated; ws: 2·n·nh floats. */
int sk_cuda_attention_bwd(sk_cuda *c, const float *q, const float *k, const float *v, int64_t n, int nh, int nkv,
                          int hd, int window, float scale, float softcap, const float *dout, float *dq, float *dk,
                          float *dv, float *ws);
/* Rows [row0, row0 + n) of a pass that hold one sequence. */
typedef struct {
	int64_t row0, n;
} sk_cuda_span;
/* Several sequences without a cache in one call (training), each as
 * sk_cuda_attention and sk_cuda_attention_bwd would do it alone: rows
 * spans[i] of q, k, v (positions pos, used only by a sequence too long for
 * the batched products) and of out, or dq (overwritten), dk and dv
 * (accumulated); ws as sk_cuda_attention_bwd's for the longest. */
int sk_cuda_attention_spans(sk_cuda *c, const float *q, const float *k, const float *v, const int32_t *pos,
                            const sk_cuda_span *spans, int n_spans, int nh, int nkv, int hd, int window, float scale,
                            float softcap, float *out);
int sk_cuda_attention_bwd_spans(sk_cuda *c, const float *q, const float *k, const float *v, const sk_cuda_span *spans,
                                int n_spans, int nh, int nkv, int hd, int window, float scale, float softcap,
                                const float *dout, float *dq, float *dk, float *dv, float *ws);
void sk_cuda_gelu_mul_bwd(sk_cuda *c, const float *g, const float *u, int64_t rows, int64_t dim, float sparsity_z,
                          const float *dh, float *dg, float *du);
void sk_cuda_rescale_rms_bwd(sk_cuda *c, const float *u, const float *ref, int64_t rows, int64_t dim,
                             const float *dy, float *du, float *dref);
void sk_cuda_altup_router_bwd(sk_cuda *c, const float *x, int64_t rows, int64_t dim, const float *norm_w, float eps,
                              const float *w, int A, const float *out, const float *dout, float *dx);
void sk_cuda_altup_predict_bwd(sk_cuda *c, const float *x, int64_t rows, int64_t dim, int A, const float *wp,
                               const float *modal, const float *dp, float *dx, float *dmodal);
void sk_cuda_altup_correct_bwd(sk_cuda *c, const float *p, const float *y, int64_t rows, int64_t dim, int A,
                               int active, const float *wc, const float *modal, const float *dc, float *dp, float *dy,
                               float *dmodal);
void sk_cuda_xent_chunk(sk_cuda *c, float *z, int64_t n, int64_t cw, int64_t col0, float cap, const int32_t *labels,
                        float *mx, float *se, float *lab);
void sk_cuda_xent_chunk_grad(sk_cuda *c, float *z, int64_t n, int64_t cw, int64_t col0, float cap,
                             const int32_t *labels, const float *lse, const float *coef);
/* The LM head's two passes over V rows of the bf16 table E in chunks of cw
 * columns through z [n][cw] (head_loss.cu): the xent_chunk state of every
 * chunk, and dhn (overwritten) = Σ over the chunks of their gradient · E.
 * 1 done, 0 not taken (nothing written), -1 error. */
int sk_cuda_head_lse(sk_cuda *c, const sk_cuda_weight *E, int64_t V, const float *hn, int64_t n, int64_t cw,
                     float cap, const int32_t *labels, float *z, float *mx, float *se, float *lab);
int sk_cuda_head_grad(sk_cuda *c, const sk_cuda_weight *E, int64_t V, const float *hn, int64_t n, int64_t cw,
                      float cap, const int32_t *labels, const float *lse, const float *coef, float *z, float *dhn);

/* ---- Sampling (engine/backend/backend.h's sk_sample_row, same layout) ---- */

typedef struct {
	float temperature, top_p, min_p, penalty;
	int32_t top_k, greedy;
	double u;  /* the draw's uniform number in [0, 1) */
} sk_cuda_sample_row;

/* Draws ids[r] from row r of logits [n][vocab] (modified in place) with
 * the CPU sampler's rules; seen (may be NULL): a bitmap of seen ids per
 * sequence, row r using sequence row_seq[r]; -1 when every token is masked. */
int sk_cuda_sample(sk_cuda *c, float *logits, int64_t n, int64_t vocab, const sk_cuda_sample_row *rows,
                   const uint32_t *seen, int64_t seen_words, const int32_t *row_seq, int32_t *ids);
/* Sets bit ids[i] of sequence seq[i]'s bitmap, for i < n. */
void sk_cuda_mark_seen(sk_cuda *c, uint32_t *seen, int64_t words, const int32_t *ids, const int32_t *seq, int64_t n);

/* ---- Weight preparation ---- */

/* dst[i] = bf16(src[i]) (round to nearest even), device buffers. */
void sk_cuda_f32_to_bf16(sk_cuda *c, const float *src, uint16_t *dst, int64_t n);
/* Fills n bf16 values with uniform random values in [-scale, scale) from
 * seed (a benchmark's stand-in weights). */
void sk_cuda_fill_random_bf16(sk_cuda *c, uint16_t *dst, int64_t n, float scale, uint64_t seed);
/* Fills an NF4 weight's codes and first-level absmax codes at random and
 * its nested absmax with scale. */
void sk_cuda_fill_random_nf4(sk_cuda *c, uint8_t *packed, uint8_t *absmax_q, float *nested, int64_t n, float scale,
                             uint64_t seed);

#ifdef __cplusplus
}
#endif

#endif
