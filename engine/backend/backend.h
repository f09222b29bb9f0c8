/* The backend ops table: everything the model definition (gemma.c)
 * computes goes through these calls, so a CUDA backend plugs in by filling
 * the same table. Activations, index arrays, caches and workspace live in
 * the backend's memory (alloc/upload/download below; host memory for the
 * CPU backend) and the model code never touches them directly; rows of a
 * matrix are contiguous fp32. Weights are sk_tensor in their stored type.
 * Fusion (dequantization inside the matmul, the gate activation with its
 * sparsity cutoff, ...) happens inside the ops. */
#ifndef SK_BACKEND_H
#define SK_BACKEND_H

#include <stdint.h>

#include "engine/model/lora.h"
#include "engine/tensor.h"

typedef struct sk_backend sk_backend;
struct sk_lora;
struct sk_optim;

/* The keys and values an attention call sees for one sequence: positions
 * [past_lo, past_hi) from the cache, where position p sits in slot p % cap
 * of k_past/v_past ([cap][kv_dim]), then n new ones at past_hi, past_hi+1,
 * ... in k_new/v_new ([n][kv_dim]). Query row i is at position past_hi + i.
 * pos (may be NULL) holds the same positions of the new rows in backend
 * memory, so that a recorded forward can be replayed at later positions:
 * a backend that replays reads past_hi = pos[0] and past_lo from it. */
typedef struct {
	const float *k_past, *v_past;
	int64_t cap;
	int64_t past_lo, past_hi;
	const float *k_new, *v_new;
	const int32_t *pos;
} sk_attn_kv;

/* Rows [row0, row0 + n) of a pass that hold one sequence (training). */
typedef struct {
	int64_t row0, n;
} sk_row_span;

/* One row's draw on the backend (the sampler's rules, engine/model/
 * sampler.c): its settings and the uniform number the caller drew for it. */
typedef struct {
	float temperature, top_p, min_p, penalty;
	int32_t top_k, greedy;
	double u;
} sk_sample_row;

/* Arguments of the optional fused ops (every pointer backend memory). */
typedef struct {
	const float *x;
	float *ring;
	int64_t cap;
} sk_ring_dst;

typedef struct {
	const float *z, *wz, *c; /* lam = c + RMSNorm(z; wz); z NULL: no lam term */
	float *lam;
	const float *x, *wx, *a; /* y = ((a + RMSNorm(x; wx)) + lam) · scale */
	float scale;
	float *y;
	const float *wy; /* yn = RMSNorm(y; wy) */
	float *yn;
} sk_norm_add_norm;

typedef struct {
	const float *q, *qw; /* [n][nh][hd] → qo */
	float *qo;
	int nh, nkv;
	const float *k, *kw, *v; /* [n][nkv][hd] → ko, vo */
	float *ko, *vo;
} sk_qkv_norm;

typedef struct {
	const float *f, *fw, *h; /* y = h + RMSNorm(f; fw) */
	float *y;
	const float *p, *router_norm, *router, *wc; /* router over y, correction of the prediction p */
	float *modal, *out;
	const float *vs; /* vin = out_active ⊙ vs (vs NULL: a copy; vin NULL: not written) */
	float *vin;
} sk_altup_tail;

/* The gated MLP's backward from dL/dz (z = gelu_mul(g, u)) through the
 * gate and up projections of x with their LoRA pairs (gated_bwd). */
typedef struct {
	const float *g, *u, *dz; /* [rows][dim] */
	int64_t rows, dim;
	float sparsity_z;
	const float *x;          /* [rows][in] */
	const sk_tensor *w[2];   /* gate, up: [dim, in] */
	const sk_lora_pair *l[2];
	float dropout;
	uint64_t seed[2];
	float *gA[2], *gB[2];
	float *dg, *du;          /* [rows][dim] the op may use as scratch */
	float *dx;               /* [rows][in], overwritten */
} sk_gated_bwd;

/* The gated MLP of a training forward, y = down(gelu_mul(gate(x), up(x)))
 * with the three projections' LoRA pairs (gated_mlp). */
typedef struct {
	const sk_tensor *w[3];   /* gate, up [dim, in]; down [in, dim] */
	const sk_lora_pair *l[3];
	const float *x;          /* [rows][in] */
	int64_t rows;
	float dropout, sparsity_z;
	float *y;                /* [rows][in], overwritten; NULL: save (down's output was kept) */
	float *g, *u, *z;        /* [rows][dim] each: where a save leaves what gated_mlp_bwd reads */
} sk_gated_mlp;

/* The backward of an MLP gated_mlp saved, from dy = dL/dy: dx = dL/dx
 * (overwritten) and the three pairs' gradients added (gA, gB: the
 * adapter's host gradient pointers, all six given, as linear_lora_bwd's). */
typedef struct {
	const sk_tensor *w[3];
	const sk_lora_pair *l[3];
	const float *x;          /* [rows][in] */
	int64_t rows;
	float sparsity_z;
	const float *g, *u, *z;  /* what the save left */
	const float *dy;         /* [rows][in] */
	float *gA[3], *gB[3];
	float *dx;               /* [rows][in] */
	float *work;             /* [rows][dim] floats of room */
} sk_gated_mlp_bwd;

typedef struct {
	const char *name;
	/* Activations live in host memory: the model may hand the backend host
	 * arrays (index lists, the caller's logits) without staging copies. */
	int host_memory;

	/* ---- Memory and data movement ---- */

	/* Zero-filled memory the ops can address (NULL + sk_error() when out of
	 * memory: the message names what, how much and what is free). */
	void *(*alloc)(sk_backend *be, size_t bytes, const char *what);
	void (*free)(sk_backend *be, void *p);
	/* Host → backend and backend → host copies of bytes. 0 or -1. */
	int (*upload)(sk_backend *be, void *dst, const void *src, size_t bytes);
	int (*download)(sk_backend *be, void *dst, const void *src, size_t bytes);
	/* y = x · s over count floats (s = 1: a copy; y may alias x). */
	void (*scale)(sk_backend *be, const float *x, int64_t count, float s, float *y);
	/* x = 0 over count floats. */
	void (*zero)(sk_backend *be, float *x, int64_t count);
	/* y[i] = x[idx[i]] (gather) or y[idx[i]] = x[i] (scatter), rows of dim. */
	void (*gather_rows)(sk_backend *be, const float *x, int64_t dim, const int64_t *idx, int64_t n, float *y);
	void (*scatter_rows)(sk_backend *be, const float *x, int64_t dim, const int64_t *idx, int64_t n, float *y);
	/* Writes n consecutive rows of dim to a ring of cap rows, row i to slot
	 * pos[i] % cap (pos in backend memory; only the last cap rows when n > cap). */
	void (*ring_write)(sk_backend *be, const float *x, int64_t n, int64_t dim, float *ring, int64_t cap,
	                   const int32_t *pos);
	/* Optional (NULL: ring_write per entry): count ring writes of the same
	 * n rows and positions in one call, entry i from w[i].x into w[i].ring
	 * of w[i].cap rows (a step's new K and V of every layer). */
	void (*ring_write_many)(sk_backend *be, int64_t n, int64_t dim, const int32_t *pos, const sk_ring_dst *w,
	                        int count);

	/* ---- Weights (NULL on a backend that reads them where the model put them) ---- */

	/* Moves a weight the forward reads to where the backend computes,
	 * rewriting t (its data, dtype and device; what it was stays the
	 * caller's). host_resident: keep it in pinned host memory and read the
	 * rows a batch needs from there (the per-layer-embedding table). what
	 * names it in errors. 0 or -1. */
	int (*load_tensor)(sk_backend *be, sk_tensor *t, int host_resident, const char *what);
	/* A weight of t's shape made where the backend computes, filled with
	 * random values of magnitude scale from seed (NF4 codes when nf4): the
	 * stand-in weights of a benchmark on a model shape (sk_model_random). */
	int (*random_tensor)(sk_backend *be, sk_tensor *t, int nf4, int host_resident, float scale, uint64_t seed,
	                     const char *what);
	/* Same for an fp32 vector of n values: *v is replaced by the backend's copy. */
	int (*load_vector)(sk_backend *be, float **v, int64_t n, const char *what);
	/* The adapter whose pairs the linear op is given from now on (NULL:
	 * none); the backend keeps its own copy of the factors. 0 or -1. */
	int (*set_adapter)(sk_backend *be, const struct sk_lora *l);

	/* Rows [r0, r0 + n) of a weight matrix as a tensor of their own (the LM
	 * head's vocabulary chunks); NULL: the caller offsets the data pointer. */
	int (*slice_rows)(sk_backend *be, const sk_tensor *t, int64_t r0, int64_t n, sk_tensor *out);

	/* ---- The adapter being trained (NULL: its host buffers are used as they are) ---- */

	/* Takes l as the adapter being trained (NULL: none): the backend keeps
	 * device copies of its factors, and lora_fwd/lora_bwd on its pairs use
	 * them and accumulate its gradients on the device, ignoring the host
	 * gradient pointers they are given. 0 or -1. */
	int (*train_begin)(sk_backend *be, const struct sk_lora *l);
	/* Copies the factors again (the host changed them: an optimizer step, a
	 * resume). 0 or -1. */
	int (*train_upload)(sk_backend *be);
	/* Adds the device gradients into the adapter's host gradient buffers and
	 * zeroes the device ones. 0 or -1. */
	int (*train_download_grads)(sk_backend *be);
	/* Optional: the optimizer kept where the adapter is (NULL, or begin
	 * giving 0: the host steps it after train_download_grads). begin takes
	 * the optimizer's states as they are now (new, or loaded for a resume)
	 * and gives 1 when the backend keeps them from here on; then step clips
	 * the device gradients to max_norm (torch's rule; <= 0: no clipping),
	 * writes their norm, updates the factors unless that norm is not finite
	 * (then the step is not counted) and zeroes the gradients; sync copies
	 * the states and the factors back into the optimizer's and the adapter's
	 * host buffers (before a checkpoint). 0 or -1 (begin: 1, 0 or -1). */
	int (*train_optim_begin)(sk_backend *be, struct sk_optim *o);
	int (*train_optim_step)(sk_backend *be, struct sk_optim *o, double lr, float max_norm, float *norm);
	int (*train_optim_sync)(sk_backend *be, struct sk_optim *o);

	/* ---- Recording a forward to replay it (NULL: every forward runs its ops) ---- */

	/* Called before the ops of a forward whose shape and buffers key
	 * identifies. 1: the backend replayed its recording of that forward and
	 * the caller skips the ops; 0: the caller runs the ops (the backend may
	 * record them) and then calls record_end, with ok 0 when an op failed
	 * (the recording is dropped); record_end gives 0, -1 on error, or 1 when
	 * the recording failed and nothing ran (the caller runs the ops again).
	 * -1 on error. */
	int (*record_begin)(sk_backend *be, uint64_t key);
	int (*record_end)(sk_backend *be, int ok);
	/* Forgets every recording (the buffers they name moved or were freed). */
	void (*record_drop)(sk_backend *be);
	/* ---- Sampling on the backend (NULL: the caller samples from the logits) ---- */

	/* ids[r] drawn from logits row r (n rows of vocab, modified) by rows[r];
	 * seen: per-sequence bitmaps of seen ids (words each; may be NULL), row r
	 * of sequence row_seq[r]. All arrays in backend memory. 0 or -1. */
	int (*sample)(sk_backend *be, float *logits, int64_t n, int64_t vocab, const sk_sample_row *rows,
	              const uint32_t *seen, int64_t words, const int32_t *row_seq, int32_t *ids);
	/* Marks ids[i] seen in sequence seq[i]'s bitmap, i < n. */
	void (*mark_seen)(sk_backend *be, uint32_t *seen, int64_t words, const int32_t *ids, const int32_t *seq, int64_t n);

	/* Device memory now, in bytes (0 when not a device). */
	void (*mem_info)(sk_backend *be, uint64_t *free_bytes, uint64_t *total_bytes);
	/* Kernels in the last recorded forward (0: none recorded). */
	int (*recorded_nodes)(sk_backend *be);
	/* Prints the per-op GPU times gathered since the last report (profiling on). */
	void (*profile_report)(sk_backend *be, void *file);
	/* The device's measured copy bandwidth, bytes read + written per second. */
	double (*copy_bandwidth)(sk_backend *be);

	/* ---- Forward ---- */

	/* y[n][out] = x[n][in] · Wᵀ for W [out, in] (any stored type, or NF4).
	 * With lora (may be NULL): rows i with lora_rows[i] != 0 also get
	 * scale · B (A x_i). Returns 0, or -1 for a weight type it cannot read. */
	int (*linear)(sk_backend *be, const sk_tensor *w, const float *x, int64_t n, float *y,
	              const sk_lora_pair *lora, const uint8_t *lora_rows);
	/* Optional: two linears of the same input (y1 = x W1ᵀ, y2 = x W2ᵀ, each
	 * with its LoRA pair) at once; NULL: the model calls linear twice. */
	int (*linear2)(sk_backend *be, const sk_tensor *w1, const sk_tensor *w2, const float *x, int64_t n, float *y1,
	               float *y2, const sk_lora_pair *l1, const sk_lora_pair *l2, const uint8_t *lora_rows);
	/* out[i] = table[ids[i]] · scale (rows dequantized one by one). ids must
	 * be in range (the caller checks). */
	int (*embed)(sk_backend *be, const sk_tensor *table, const int32_t *ids, int64_t n, float scale, float *out);
	/* y = x / sqrt(mean(x²) + eps) ⊙ w over each row of dim (w NULL: no
	 * weight). y may equal x. */
	void (*rmsnorm)(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *w, float eps, float *y);
	/* Fused: y = ((a + RMSNorm(x; w)) + b) · scale over rows of dim (b may
	 * be NULL: then (a + RMSNorm(x; w)) · scale), rounded as the separate
	 * ops round. y may alias any input. */
	void (*norm_add)(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *w, float eps,
	                 const float *a, const float *b, float scale, float *y);
	/* Optional (NULL: the model calls norm_add per stream): y_k += RMSNorm(x; w)
	 * for each of the A streams y_k = y + k·rows·dim except stream skip, the
	 * norm computed once; rounded as norm_add rounds. */
	void (*norm_add_streams)(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *w, float eps,
	                         float *y, int A, int skip);
	/* Fused: y = rope(RMSNorm(x; w)) on [n][heads][hd] (norm over each
	 * head), as rmsnorm then rope compute it. y may alias x. */
	void (*norm_rope)(sk_backend *be, const float *x, int64_t n, int heads, int hd, const float *w, float eps,
	                  const int32_t *pos, float theta, float factor, float *y);
	/* Rotary embedding, half-split (NeoX) form, in place on x [n][heads][hd];
	 * angle of pair m at row i: pos[i] · theta^(-2m/hd) / factor. */
	void (*rope)(sk_backend *be, float *x, int64_t n, int heads, int hd, const int32_t *pos, float theta, float factor);
	/* Causal attention of n query rows q [n][nh·hd] over kv (GQA: query head
	 * h reads kv head h / (nh / nkv)); window > 0 limits a query at position
	 * p to keys at positions > p - window. scores · scale, then softcap when
	 * > 0, softmax in fp32. out [n][nh·hd]. 0 or -1. */
	int (*attention)(sk_backend *be, const float *q, int64_t n, const sk_attn_kv *kv, int nh, int nkv, int hd,
	                 int window, float scale, float softcap, float *out);
	/* Optional (NULL: the caller calls attention once a sequence): the
	 * attention of several sequences without a cache in one call, as
	 * attention would give each alone with no past keys. Rows spans[i] of q,
	 * k, v [rows][nkv·hd], pos (backend memory) and out. 0 or -1. */
	int (*attention_spans)(sk_backend *be, const float *q, const float *k, const float *v, const int32_t *pos,
	                       const sk_row_span *spans, int n_spans, int nh, int nkv, int hd, int window, float scale,
	                       float softcap, float *out);
	/* y = (a + b) · scale (y may alias a or b). */
	void (*add)(sk_backend *be, const float *a, const float *b, int64_t count, float scale, float *y);
	/* y[r] = x[r] ⊙ w[r · w_stride ...] for each row of dim (w_stride 0:
	 * one w broadcast over rows). y may alias x. */
	void (*mul_rows)(sk_backend *be, const float *x, const float *w, int64_t w_stride, int64_t rows, int64_t dim,
	                 float *y);
	/* Gated activation in place: g ← gelu_tanh(g') ⊙ u, where g' = g, or,
	 * with sparsity_z != 0, relu(g - (mean(g) + z·std(g))) per row
	 * (population std). Row r of u starts at u + r·u_stride (u_stride = dim
	 * for a matrix like g). u may be NULL (no product: plain gelu). */
	void (*gelu_mul)(sk_backend *be, float *g, const float *u, int64_t u_stride, int64_t rows, int64_t dim,
	                 float sparsity_z);
	/* Optional (NULL: training keeps its checkpoints in fp32): n floats to
	 * bf16 (round to nearest even) and back. */
	void (*to_bf16)(sk_backend *be, const float *x, int64_t n, uint16_t *y);
	void (*from_bf16)(sk_backend *be, const uint16_t *y, int64_t n, float *x);
	/* Optional (NULL: copy g to out, then gelu_mul in place): gelu_mul of g
	 * written to out, g left as it was (training keeps the pre-activation
	 * for the backward). */
	void (*gelu_mul_to)(sk_backend *be, const float *g, const float *u, int64_t u_stride, int64_t rows, int64_t dim,
	                    float sparsity_z, float *out);
	/* x ← cap · tanh(x / cap). */
	void (*softcap)(sk_backend *be, float *x, int64_t count, float cap);
	/* AltUp magnitude match: u[r] ← u[r] · rms(ref[r]) / sqrt(max(mean(u[r]²), 1e-5)). */
	void (*rescale_rms)(sk_backend *be, float *u, const float *ref, int64_t rows, int64_t dim);
	/* AltUp router: out[r][k] = tanh(Σ_j W[k][j] · RMS(x[r]; norm_w)_j / dim), W [A][dim] fp32. */
	void (*altup_router)(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *norm_w, float eps,
	                     const float *w, int A, float *out);
	/* Streams are [A][rows][dim]. Predict: p_k = x_k + Σ_i C[k][i] x_i, with
	 * C[k][i] = Σ_m Wp[k·A + i][m] · modal[r][m] (Wp [A·A][A]). */
	void (*altup_predict)(sk_backend *be, const float *x, int64_t rows, int64_t dim, int A, const float *wp,
	                      const float *modal, float *p);
	/* Correct: c_k = p_k + (1 + Σ_m Wc[k][m] · modal[r][m]) · (y - p_active). */
	void (*altup_correct)(sk_backend *be, const float *p, const float *y, int64_t rows, int64_t dim, int A,
	                      int active, const float *wc, const float *modal, float *c);

	/* Optional (NULL: the model calls altup_router then altup_predict / altup_correct):
	 * the router over stream active of x, modal written, then the prediction p
	 * and (nrm not NULL) nrm = RMSNorm(p_active; nw); and the router over y,
	 * modal written, then the correction into c. Results as the separate calls
	 * give them. */
	void (*altup_router_predict)(sk_backend *be, const float *x, int64_t rows, int64_t dim, int active,
	                             const float *norm_w, float eps, const float *w, int A, const float *wp, float *modal,
	                             float *p, const float *nw, float *nrm);
	void (*altup_router_correct)(sk_backend *be, const float *p, const float *y, int64_t rows, int64_t dim, int active,
	                             const float *norm_w, float eps, const float *w, int A, const float *wc, float *modal,
	                             float *c);

	/* Optional fusions of a decoder layer's norms (NULL: the model makes the
	 * separate calls; results as those give them). After attention: */
	void (*norm_add_norm)(sk_backend *be, int64_t rows, int64_t dim, float eps, const sk_norm_add_norm *a);
	/* q and k of [n][heads][hd] through norm_rope, v through a weight-less
	 * rmsnorm over each head (Gemma 3n), one call: */
	void (*norm_rope_qkv)(sk_backend *be, int64_t n, int hd, float eps, const int32_t *pos, float theta, float factor,
	                      const sk_qkv_norm *a);
	/* After the MLP (Gemma 3n): */
	void (*altup_norm_add_correct)(sk_backend *be, int64_t rows, int64_t dim, int A, int active, float eps,
	                               const sk_altup_tail *a);

	/* ---- Training (train_grad.h): the LoRA branch with dropout, and the
	 * backward of every op above. "d" arrays are gradients of the loss;
	 * "accumulate" adds to the output instead of overwriting it. ---- */

	/* y[n][out] += scale · B A drop(x_i) for every row, drop(x) = x ⊙ keep /
	 * (1 - dropout), keep[i][j] a hash of (seed, i, j) (recomputed, never
	 * stored); dropout 0 uses x as is. 0 or -1. */
	int (*lora_fwd)(sk_backend *be, const sk_lora_pair *l, const float *x, int64_t n, float dropout, uint64_t seed,
	                float *y);
	/* linear (no pair) then lora_fwd in one call, for a backend that can
	 * fuse the two; NULL: the caller makes the two calls. 0 or -1. */
	int (*linear_lora_fwd)(sk_backend *be, const sk_tensor *w, const float *x, int64_t n, float *y,
	                       const sk_lora_pair *l, float dropout, uint64_t seed);
	/* Optional (NULL, or 0 returned: the three products and gelu_mul_to):
	 * the gated MLP in one call, for a forward whose gate, up and gated
	 * outputs nothing reads again (a checkpointed pass's first forward), so
	 * a backend may keep them in a narrower form of its own. 1 done, 0 not
	 * taken (nothing written), -1 error. */
	int (*gated_mlp)(sk_backend *be, const sk_gated_mlp *a);
	/* With y NULL (the layer computed again for its backward, down's output
	 * kept), gated_mlp may save what its own backward needs in g, u and z
	 * in a form of its own and return 1; the MLP's backward is then this
	 * op's (0 or -1, never declined). */
	int (*gated_mlp_bwd)(sk_backend *be, const sk_gated_mlp_bwd *a);
	/* Its backward with t = A drop(x): gB += scale · dyᵀ t, gA += dtᵀ drop(x)
	 * with dt = scale · dy B, and (dx not NULL) dx += drop'(dt A). 0 or -1. */
	int (*lora_bwd)(sk_backend *be, const sk_lora_pair *l, const float *x, const float *dy, int64_t n, float dropout,
	                uint64_t seed, float *gA, float *gB, float *dx);
	/* linear_bwd then lora_bwd (gA, gB and dx all wanted) in one call, for
	 * a backend that can share work between them; NULL: the caller makes
	 * the two calls. 0 or -1. */
	int (*linear_lora_bwd)(sk_backend *be, const sk_tensor *w, const sk_lora_pair *l, const float *x,
	                       const float *dy, int64_t n, float dropout, uint64_t seed, float *gA, float *gB, float *dx,
	                       int accumulate);
	/* dx[n][in] (+)= dy[n][out] · W for W [out, in] in any stored type or NF4
	 * (tiles dequantized as in linear). 0 or -1. */
	int (*linear_bwd)(sk_backend *be, const sk_tensor *w, const float *dy, int64_t n, float *dx, int accumulate);
	/* RMSNorm backward from the forward's input x (w NULL: no weight):
	 * dx (+)= r·u − (r³/dim)·x·Σ(u ⊙ x), u = dy ⊙ w. dx may equal dy when
	 * not accumulating. */
	void (*rmsnorm_bwd)(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *w, float eps,
	                    const float *dy, float *dx, int accumulate);
	/* The inverse rotation of rope, in place on the gradient d [n][heads][hd]. */
	void (*rope_bwd)(sk_backend *be, float *d, int64_t n, int heads, int hd, const int32_t *pos, float theta,
	                 float factor);
	/* Backward of attention for one sequence without a cache: n query rows
	 * at positions 0..n-1 over k, v [n][nkv·hd] (the same positions),
	 * probabilities recomputed. dq [n][nh·hd] is overwritten; dk, dv are
	 * accumulated (KV-shared layers add into their producer's). ws: 2·n·nh
	 * floats. 0 or -1. */
	int (*attention_bwd)(sk_backend *be, const float *q, const float *k, const float *v, int64_t n, int nh, int nkv,
	                     int hd, int window, float scale, float softcap, const float *dout, float *dq, float *dk,
	                     float *dv, float *ws);
	/* Optional (NULL: attention_bwd once a sequence): the backward of
	 * several sequences in one call, as attention_bwd on each's rows spans[i];
	 * ws as attention_bwd's for the longest. 0 or -1. */
	int (*attention_bwd_spans)(sk_backend *be, const float *q, const float *k, const float *v, const sk_row_span *spans,
	                           int n_spans, int nh, int nkv, int hd, int window, float scale, float softcap,
	                           const float *dout, float *dq, float *dk, float *dv, float *ws);
	/* Backward of gelu_mul from the pre-activation g and u (NULL: plain
	 * gelu), including the sparsity cutoff's mean and std: dg gets dL/dg,
	 * du (when u) dL/du. dg may equal dh. */
	void (*gelu_mul_bwd)(sk_backend *be, const float *g, const float *u, int64_t rows, int64_t dim, float sparsity_z,
	                     const float *dh, float *dg, float *du);
	/* Optional (NULL, or 0 returned: gelu_mul_bwd into dg and du, then
	 * linear_lora_bwd of gate into dx and of up added to it): the same in
	 * one call, for a backend that can hand the two gradients to the
	 * products without storing them. 1 done, 0 not taken (nothing
	 * written), -1 error. */
	int (*gated_bwd)(sk_backend *be, const sk_gated_bwd *a);
	/* Backward of rescale_rms from the unscaled u: du overwritten, dref accumulated. */
	void (*rescale_rms_bwd)(sk_backend *be, const float *u, const float *ref, int64_t rows, int64_t dim,
	                        const float *dy, float *du, float *dref);
	/* Backward of altup_router (out: its forward output): dx accumulated. */
	void (*altup_router_bwd)(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *norm_w, float eps,
	                         const float *w, int A, const float *out, const float *dout, float *dx);
	/* Backward of altup_predict: dx [A][rows][dim] and dmodal [rows][A] overwritten. */
	void (*altup_predict_bwd)(sk_backend *be, const float *x, int64_t rows, int64_t dim, int A, const float *wp,
	                          const float *modal, const float *dp, float *dx, float *dmodal);
	/* Backward of altup_correct: dp [A][rows][dim], dy and dmodal overwritten. */
	void (*altup_correct_bwd)(sk_backend *be, const float *p, const float *y, int64_t rows, int64_t dim, int A,
	                          int active, const float *wc, const float *modal, const float *dc, float *dp, float *dy,
	                          float *dmodal);
	/* Cross-entropy over a vocabulary chunk z [n][cw] (raw head outputs of
	 * columns col0..col0+cw-1): softcap (cap > 0) in place, then the online
	 * logsumexp state of each row (mx, se: running max and Σ exp(ℓ − mx))
	 * and lab[i] = ℓ of labels[i] when it falls in the chunk. */
	void (*xent_chunk)(sk_backend *be, float *z, int64_t n, int64_t cw, int64_t col0, float cap,
	                   const int32_t *labels, float *mx, float *se, float *lab);
	/* Its gradient in place: z ← (softmax − onehot) · coef[i] · softcap'
	 * from the raw chunk z and each row's logsumexp lse. */
	void (*xent_chunk_grad)(sk_backend *be, float *z, int64_t n, int64_t cw, int64_t col0, float cap,
	                        const int32_t *labels, const float *lse, const float *coef);
	/* Optional: the loss's two passes over the vocabulary (rows 0..V-1 of
	 * the head's table, in chunks of cw columns through z [n][cw]) in one
	 * call each: head_lse leaves every chunk's xent_chunk state in mx, se,
	 * lab; head_grad writes dhn [n][H] = Σ over the chunks of
	 * xent_chunk_grad's z · E_chunk. 1 done, 0 not taken (nothing written:
	 * the loss runs its chunks through linear, xent_chunk and linear_bwd),
	 * -1 error. */
	int (*head_lse)(sk_backend *be, const sk_tensor *embed, int64_t V, const float *hn, int64_t n, int64_t cw,
	                float cap, const int32_t *labels, float *z, float *mx, float *se, float *lab);
	int (*head_grad)(sk_backend *be, const sk_tensor *embed, int64_t V, const float *hn, int64_t n, int64_t cw,
	                 float cap, const int32_t *labels, const float *lse, const float *coef, float *z, float *dhn);
} sk_backend_ops;

struct sk_backend {
	const sk_backend_ops *ops;
	sk_device device;
	void *impl;  /* the backend's own state */
};

/* The CPU backend (fp32, OpenBLAS) with `threads` threads (0 = one per core). */
sk_backend *sk_backend_cpu_new(int threads);
/* Creates the backend for a resolved device; NULL + sk_error() when this
 * build or machine lacks it. */
sk_backend *sk_backend_new(sk_device device, int threads);
void sk_backend_free(sk_backend *be);
int sk_backend_threads(const sk_backend *be);

#endif
