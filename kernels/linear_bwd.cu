// The training backward of a product, dx (+)= dy · W on bf16 operands
// through cuBLASLt, with its LoRA branch's gradients (SK_CUDA_LORA_BWD), and
// the gated GELU's backward into gate's and up's (SK_CUDA_GATED_BWD).
#include "kernels/linear_internal.cuh"

// ---- backward: dx[n][in] (+)= dy[n][out] · W ----


// dxᵀ (in x n) = (W's rows as in x k) · (k columns of dy as k x n, rows of
// ld_dy) on bf16 operands with fp32 accumulation; beta 1 adds to dx.
static int gemm_bwd(sk_cuda *c, const __nv_bfloat16 *W, int64_t ld_w, const __nv_bfloat16 *DY, int64_t ld_dy,
                    int64_t n, int64_t k, int64_t in, float beta, float *DX)
{
	sk_cuda_gemm_shape s = { in, n, k, ld_w, ld_dy, in, 0, 0, 1, 0, 1, 0, 0, 0 };
	return sk_cuda_matmul(c, s, 1.0f, W, DY, beta, DX);
}

// Rows of an NF4 weight [out][in] the backward dequantizes at a time: as
// many as SK_CUDA_NF4_DX_CHUNK elements hold (0: the whole matrix), a
// multiple of 8 so that each chunk's columns of dy start 16-byte aligned.
static int64_t dx_chunk_rows(const sk_cuda *c, int64_t out, int64_t in)
{
	if (c->nf4_dx_chunk <= 0)
		return out;
	int64_t r = c->nf4_dx_chunk / in / 8 * 8;
	return r < 8 ? 8 : r >= out ? out : r;
}

// An NF4 weight's bf16 copy kept by the folded forward (weight_cache.cu), or NULL
static const __nv_bfloat16 *kept_copy(sk_cuda *c, const sk_cuda_weight *w)
{
	return w->kind == SK_CUDA_W_NF4
		? (const __nv_bfloat16 *)sk_cuda_wcache_find(c, w->packed, sk_cuda_kept_bytes(w->rows, w->cols)) : NULL;
}

// dx (+)= yh · W from dy's bf16 copy yh: one product over the weight's
// bf16 rows (kept: the folded forward's copy of an NF4 weight when the
// weight cache kept it, rows of ld in + 8), or a sum over row chunks [r0, r0 + k)
// of W, dy[:, r0 : r0 + k] · W[r0 : r0 + k], an NF4 weight's R rows at a
// time dequantized into wbuf. A product with beta 0 reads nothing of dx;
// only a chunked sum that overwrites zeroes dx first (so that nothing it
// held, NaN included, reaches the sum). 0 or -1 (recorded).
static int bwd_products(sk_cuda *c, const sk_cuda_weight *w, const __nv_bfloat16 *kept, const __nv_bfloat16 *yh,
                        int64_t n, float *dx, int accumulate, int64_t R, __nv_bfloat16 *wbuf)
{
	int64_t out = w->rows, in = w->cols;
	if (kept)
		return gemm_bwd(c, kept, in + FOLD_COLS, yh, out, n, out, in, accumulate ? 1.0f : 0.0f, dx);
	if (!accumulate && R < out) {
		cudaError_t e = cudaMemsetAsync(dx, 0, (size_t)(n * in) * sizeof(float), c->stream);
		if (e != cudaSuccess) {
			sk_cuda_fail(c, "linear backward: %s", cudaGetErrorString(e));
			return -1;
		}
	}
	for (int64_t r0 = 0; r0 < out; r0 += R) {
		int64_t k = out - r0 < R ? out - r0 : R;
		const __nv_bfloat16 *wh;
		if (w->kind == SK_CUDA_W_NF4) {
			sk_cuda_nf4_to_bf16(c, w, r0 * in, k * in, in, in, wbuf);
			wh = wbuf;
			if (sk_cuda_launched(c, "linear backward: NF4 weight to bf16") != 0)
				return -1;
		} else {
			wh = (const __nv_bfloat16 *)w->bf16 + r0 * in;
		}
		if (gemm_bwd(c, wh, in, yh + r0, out, n, k, in, accumulate || r0 > 0 ? 1.0f : 0.0f, dx) != 0)
			return -1;
	}
	return 0;
}

extern "C" int sk_cuda_linear_bwd(sk_cuda *c, const sk_cuda_weight *w, const float *dy, int64_t n, float *dx,
                                  int accumulate)
{
	int64_t out = w->rows, in = w->cols;
	if (n <= 0 || in <= 0)
		return sk_cuda_check(c);
	int gemm_ok = in % 8 == 0 && out % 8 == 0 && ((uintptr_t)dx & 15) == 0 &&
	              (w->kind == SK_CUDA_W_NF4 || ((uintptr_t)w->bf16 & 15) == 0);
	if (!gemm_ok || out <= 0 || c->exact) {
		sk_cuda_linear_bwd_any(c, w, dy, n, dx, accumulate);
		sk_cuda_launched(c, "linear backward");
		return sk_cuda_check(c);
	}
	// dy in bf16, then (NF4) the weight dequantized to bf16, all of it or R rows at a time
	int64_t R = w->kind == SK_CUDA_W_NF4 ? dx_chunk_rows(c, out, in) : out;
	size_t yb = ((size_t)(n * out) * 2 + 255) & ~(size_t)255;
	size_t wb = w->kind == SK_CUDA_W_NF4 ? (size_t)(R * in) * 2 : 0;
	char *s = (char *)sk_cuda_scratch(c, yb + wb);
	if (!s)
		return sk_cuda_check(c);
	__nv_bfloat16 *yh = (__nv_bfloat16 *)s;
	sk_cuda_to_bf16(c, dy, n * out, yh);
	if (sk_cuda_launched(c, "linear backward: dy to bf16") != 0)
		return sk_cuda_check(c);
	bwd_products(c, w, kept_copy(c, w), yh, n, dx, accumulate, R, (__nv_bfloat16 *)(s + yb));
	return sk_cuda_check(c);
}

// ---- a training product's backward with its LoRA branch's (default; SK_CUDA_LORA_BWD=0: off) ----
//
// dx (+)= dy · W + drop'(dt · A), gB += scale · dyᵀ t, gA += dtᵀ drop(x), with
// t = drop(x) Aᵀ and dt = dy · (scale · B). dy's bf16 copy, made once for dx,
// also feeds the branch's two products over out (dt and gB), on bf16 operands
// like the folded forward's; where lora_bwd read the fp32 dy twice more in
// thin fp32 products. The products over n (gA) and the rank-r update of dx
// stay in fp32.

// What one such backward will read and where its scratch parts lie, decided
// before anything is launched
typedef struct {
	const __nv_bfloat16 *kc;   // the forward's kept bf16 copy of an NF4 weight, or NULL
	int kb;                    // kc's scale·B columns are this pair's current ones
	const __nv_bfloat16 *kept; // SK_CUDA_LORA_DX_FOLD: dx in one product [dy | dt] · [W ; A] over kc, or NULL
	int64_t ldy, R;            // dy's bf16 rows; an NF4 weight's rows dequantized at a time
	size_t at[8], bytes;       // the scratch parts' offsets, and the whole
} lora_bwd_plan;

static int lora_bwd_takes(const sk_cuda *c, const sk_cuda_weight *w, const sk_cuda_lora *l, int64_t n,
                          const float *gA, const float *gB, const float *dx)
{
	int64_t out = w->rows, in = w->cols;
	return c->lora_bwd && !c->exact && n > 0 && in % 8 == 0 && out % 8 == 0 && ((uintptr_t)dx & 15) == 0 &&
	       (w->kind == SK_CUDA_W_NF4 || ((uintptr_t)w->bf16 & 15) == 0) && l && l->r >= 1 && l->r <= FOLD_COLS &&
	       l->in == in && l->out == out && gA && gB && dx;
}

// own_dy: dy's bf16 rows are made in the scratch (0: the caller hands them in, rows of pl->ldy)
static void lora_bwd_plan_make(sk_cuda *c, const sk_cuda_weight *w, const sk_cuda_lora *l, int64_t n, float p,
                               int own_dy, lora_bwd_plan *pl)
{
	int64_t out = w->rows, in = w->cols;
	pl->R = w->kind == SK_CUDA_W_NF4 ? dx_chunk_rows(c, out, in) : out;
	// the weight kept by the forward with A's rows below it, without dropout: the rank-r update
	// of dx as FOLD_COLS more rows of dx's product, [yh | bf16(dt)] · [W ; A] (the kept copy holds
	// this pair's current scale·B columns, and A's rows with the fold, unless the pair was
	// written since it was folded)
	pl->kc = kept_copy(c, w);
	pl->kb = c->keep_b && pl->kc && sk_cuda_wcache_lora_current(c, w->packed, l, 0);
	pl->kept = c->lora_dx_fold && p <= 0.0f && pl->kc && sk_cuda_wcache_lora_current(c, w->packed, l, 1) ? pl->kc
	                                                                                                        : NULL;
	pl->ldy = pl->kept ? out + FOLD_COLS : out;
	// dy in bf16 (rows of ldy) | an NF4 chunk | bf16(scale · B) [out][8] | bf16(t) [n][8] | t [n][r] |
	// dt [n][8] | drop(x)
	const size_t bytes[6] = { own_dy ? (size_t)(n * pl->ldy) * 2 : 0,
		                  w->kind == SK_CUDA_W_NF4 && !pl->kept ? (size_t)(pl->R * in) * 2 : 0,
		                  (size_t)(out * FOLD_COLS) * 2,
		                  (size_t)(n * FOLD_COLS) * 2,
		                  (size_t)(n * l->r) * 4,
		                  (size_t)(n * FOLD_COLS) * 4 };
	size_t off = 0;
	for (int i = 0; i < 6; i++) {
		pl->at[i] = off;
		off += (bytes[i] + 255) & ~(size_t)255;
	}
	pl->at[6] = off; // drop(x), then gA's partial sums
	off += p > 0.0f ? (((size_t)(n * in) * 4 + 255) & ~(size_t)255) : 0;
	pl->at[7] = off;
	pl->bytes = off + (in % 4 == 0 && c->lora_ga ? sk_cuda_lora_ga_bytes(n, in) : 0);
}

// The backward on the scratch s laid out by pl; yh: dy's bf16 rows when the
// caller made them (NULL: from dy). 1 or -1 (recorded).
static int lora_bwd_run(sk_cuda *c, const sk_cuda_weight *w, const sk_cuda_lora *l, const lora_bwd_plan *pl,
                        const float *x, const float *dy, __nv_bfloat16 *yh, int64_t n, float p, uint64_t seed,
                        float *gA, float *gB, float *dx, int accumulate, char *s)
{
	int64_t out = w->rows, in = w->cols, ldy = pl->ldy;
	int r = l->r;
	const __nv_bfloat16 *kc = pl->kc, *kept = pl->kept;
	__nv_bfloat16 *wbuf = (__nv_bfloat16 *)(s + pl->at[1]);
	__nv_bfloat16 *bh = (__nv_bfloat16 *)(s + pl->at[2]), *th = (__nv_bfloat16 *)(s + pl->at[3]);
	float *t = (float *)(s + pl->at[4]), *dt = (float *)(s + pl->at[5]), *xd_buf = (float *)(s + pl->at[6]);

	if (!yh) {
		yh = (__nv_bfloat16 *)(s + pl->at[0]);
		if (kept)
			sk_cuda_rows_to_bf16(c, dy, n, out, out, yh, ldy);
		else
			sk_cuda_to_bf16(c, dy, n * out, yh);
		if (sk_cuda_launched(c, "linear backward: dy to bf16") != 0)
			return -1;
	}
	if (!kept && bwd_products(c, w, kc, yh, n, dx, accumulate, pl->R, wbuf) != 0)
		return -1;
	// t, then bf16(t) and bf16(scale · B), zero past r (k_fold_x, k_fold_b with no x columns);
	// without dropout bf16(t) in one pass over x (SK_CUDA_FOLD_XT=1, as the forward)
	const float *xd = x;
	if (c->fold_xt && p <= 0.0f && in % 4 == 0 && ((uintptr_t)x & 15) == 0 && ((uintptr_t)l->A & 15) == 0) {
		sk_cuda_fold_xt(c, x, l->A, n, in, r, NULL, th, FOLD_COLS);
	} else {
		if (!(xd = sk_cuda_lora_t(c, l, x, n, p, seed, xd_buf, t)))
			return -1;
		sk_cuda_fold_x(c, NULL, t, n, 0, r, th);
	}
	int64_t ldb = FOLD_COLS;
	if (pl->kb) { // scale·B's columns of the kept copy, rows of in + 8
		bh = (__nv_bfloat16 *)kc + in;
		ldb = in + FOLD_COLS;
	} else {
		sk_cuda_fold_b(c, l->B, l->scale, out, 0, r, NULL, bh);
	}
	if (sk_cuda_launched(c, "LoRA backward: t and scale B to bf16") != 0)
		return -1;
	// dt[n][8] = yh · bh: dtᵀ (8 x n) = (bh as 8 x out, ld ldb) · (yh as out x n, ld ldy)
	sk_cuda_gemm_shape sdt = { FOLD_COLS, n, out, ldb, ldy, FOLD_COLS, 0, 0, 1, 0, 1, 0, 0, 0 };
	// gB[out][r] += scale · yhᵀ t: gBᵀ (r x out) += (th as r x n, ld 8) · (yh as out x n, ld ldy)ᵀ
	sk_cuda_gemm_shape sgb = { r, out, n, FOLD_COLS, ldy, r, 0, 1, 1, 0, 1, 0, 0, 0 };
	// gA[r][in] += dtᵀ drop(x): gAᵀ (in x r) += (drop(x) as in x n) · (dt as r x n, ld 8)ᵀ
	sk_cuda_gemm_shape sga = { in, r, n, in, FOLD_COLS, in, 0, 1, 0, 0, 1, 0, 0, 0 };
	if (sk_cuda_matmul(c, sdt, 1.0f, bh, yh, 0.0f, dt) != 0 || sk_cuda_matmul(c, sgb, l->scale, th, yh, 1.0f, gB) != 0)
		return -1;
	// gA in row chunks (lora_grad_a.cu) where x's rows allow; SK_CUDA_LORA_GA=0: the thin fp32 product
	const int ga_chunks = c->lora_ga && in % 4 == 0 && ((uintptr_t)xd & 15) == 0;
	if (ga_chunks ? sk_cuda_lora_ga(c, xd, dt, n, in, r, gA, (float *)(s + pl->at[7])) != 0
	              : sk_cuda_matmul(c, sga, 1.0f, xd, dt, 1.0f, gA) != 0)
		return -1;
	if (kept) { // bf16(dt) after dy's columns (zero past r, as bh is), then dx in one product
		sk_cuda_rows_to_bf16(c, dt, n, FOLD_COLS, FOLD_COLS, yh + out, ldy);
		if (sk_cuda_launched(c, "LoRA backward: dt to bf16") != 0)
			return -1;
		return gemm_bwd(c, kept, in + FOLD_COLS, yh, ldy, n, out + FOLD_COLS, in, accumulate ? 1.0f : 0.0f, dx) == 0
			? 1 : -1;
	}
	sk_cuda_lora_dx(c, l, n, p, seed, dt, FOLD_COLS, dx);
	return sk_cuda_launched(c, "LoRA backward") == 0 ? 1 : -1;
}

// An NF4 weight's kept copy made by the backward when no forward left one (a
// checkpointed layer computed again skips the products whose outputs were
// kept): dequantized into the weight cache with scale·B's columns and A's
// rows, as the folded forward leaves it, so that dx and its rank-r update are
// one product. The dequantization costs what the backward's own would. 0 or -1.
static int kept_copy_make(sk_cuda *c, const sk_cuda_weight *w, const sk_cuda_lora *l, float p)
{
	int64_t out = w->rows, in = w->cols, K = in + FOLD_COLS;
	if (w->kind != SK_CUDA_W_NF4 || !c->lora_fold || !c->lora_dx_fold || p > 0.0f || in % 16 != 0 || kept_copy(c, w))
		return 0;
	int hit = 0;
	__nv_bfloat16 *wh = (__nv_bfloat16 *)sk_cuda_wcache_get(c, w->packed, sk_cuda_kept_bytes(out, in), &hit);
	if (!wh || hit)
		return 0;
	sk_cuda_nf4_to_bf16(c, w, 0, out * in, in, K, wh);
	sk_cuda_fold_b(c, l->B, l->scale, out, in, l->r, l->A, wh);
	if (sk_cuda_launched(c, "backward: weight to bf16 with B and A folded") != 0)
		return -1;
	sk_cuda_wcache_lora_folded(c, w->packed, l, 1);
	return 0;
}

extern "C" int sk_cuda_linear_lora_bwd(sk_cuda *c, const sk_cuda_weight *w, const sk_cuda_lora *l, const float *x,
                                       const float *dy, int64_t n, float dropout, uint64_t seed, float *gA,
                                       float *gB, float *dx, int accumulate)
{
	if (!lora_bwd_takes(c, w, l, n, gA, gB, dx))
		return 0;
	float p = dropout > 0.0f ? dropout : 0.0f;
	if (kept_copy_make(c, w, l, p) != 0)
		return -1;
	lora_bwd_plan pl;
	lora_bwd_plan_make(c, w, l, n, p, 1, &pl);
	char *s = (char *)sk_cuda_scratch(c, pl.bytes);
	if (!s)
		return -1;
	return lora_bwd_run(c, w, l, &pl, x, dy, NULL, n, p, seed, gA, gB, dx, accumulate, s);
}

// ---- the gated GELU's backward into gate's and up's (default; SK_CUDA_GATED_BWD=0: off) ----
//
// dg and du go from the GELU's backward straight into the two products'
// bf16 operands, in the rows each backward reads: never written in fp32,
// read back and converted (at E4B 2 x 512, 128 MB written, 128 read and
// 64 written again a layer).
extern "C" int sk_cuda_gelu_lora_bwd2(sk_cuda *c, const sk_cuda_gated_bwd *a)
{
	float p = a->dropout > 0.0f ? a->dropout : 0.0f;
	if (!c->gated_bwd || (!a->in16 && a->sparsity_z != 0.0f && !a->tmp)) {
		if (a->in16)
			sk_cuda_fail(c, "the fused MLP's backward: the gated backward is off (SK_CUDA_GATED_BWD=0)");
		return a->in16 ? -1 : 0;
	}
	for (int k = 0; k < 2; k++)
		if (!lora_bwd_takes(c, a->w[k], a->l[k], a->n, a->gA[k], a->gB[k], a->dx) || a->w[k]->rows != a->dim ||
		    a->w[k]->cols != a->w[0]->cols) {
			if (a->in16)
				sk_cuda_fail(c, "the fused MLP's backward: gate's and up's backward cannot take their shapes");
			return a->in16 ? -1 : 0;
		}
	lora_bwd_plan pl[2];
	size_t hb[2], rest = 0;
	// both copies first, the second not in the first's cache buffer (without a free one the second's
	// backward dequantizes for itself: the plans see which copies there are)
	sk_cuda_wcache_hold(c, 1);
	for (int k = 0; k < 2; k++)
		if (kept_copy_make(c, a->w[k], a->l[k], p) != 0) {
			sk_cuda_wcache_hold(c, 0);
			return -1;
		}
	sk_cuda_wcache_hold(c, 0);
	for (int k = 0; k < 2; k++) {
		lora_bwd_plan_make(c, a->w[k], a->l[k], a->n, p, 0, &pl[k]);
		hb[k] = ((size_t)(a->n * pl[k].ldy) * 2 + 255) & ~(size_t)255;
		rest = pl[k].bytes > rest ? pl[k].bytes : rest;
	}
	char *s = (char *)sk_cuda_scratch(c, hb[0] + hb[1] + rest);
	if (!s) { // no room for both rows at once: the three ops, which need about half, instead
		if (a->in16)
			return -1;
		sk_cuda_check(c);
		return 0;
	}
	__nv_bfloat16 *hg = (__nv_bfloat16 *)s, *hu = (__nv_bfloat16 *)(s + hb[0]);
	if (a->in16)
		sk_cuda_gelu_mul_bwd16(c, (const __nv_bfloat16 *)a->g, (const __nv_bfloat16 *)a->u, a->n, a->dim,
		                       a->sparsity_z, (const __nv_bfloat16 *)a->dh, hg, pl[0].ldy, hu, pl[1].ldy);
	else
		sk_cuda_gelu_mul_bwd_bf16(c, a->g, a->u, a->n, a->dim, a->sparsity_z, a->dh, a->tmp, hg, pl[0].ldy, hu,
		                          pl[1].ldy);
	if (c->failed) // the launch's error is recorded for the op to report
		return -1;
	__nv_bfloat16 *h[2] = { hg, hu };
	for (int k = 0; k < 2; k++)
		if (lora_bwd_run(c, a->w[k], a->l[k], &pl[k], a->x, NULL, h[k], a->n, p, a->seed[k], a->gA[k], a->gB[k],
		                 a->dx, k, s + hb[0] + hb[1]) < 0)
			return -1;
	return 1;
}

