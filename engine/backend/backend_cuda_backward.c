/* The CUDA backend's training ops over kernels/kernels.h: the LoRA branch
 * with dropout and the backward of every forward op (backend.h, "Training").
 * Activations are device pointers; a weight is the sk_cuda_weight its
 * tensor holds; a LoRA pair is one of the adapter being trained (or, for
 * lora_fwd, the adapter set for inference), read from its device copy, and
 * its gradients accumulate in the device gradients the backend keeps
 * (backend_cuda_train.c): the host gradient pointers lora_bwd is given only
 * say which of them are wanted. */
#include "engine/backend/backend_cuda_internal.h"

#include <stdlib.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "kernels/kernels.h"

static sk_cuda *ctx(sk_backend *be)
{
	return ((cuda_be *)be->impl)->c;
}

static int valid_pair(const sk_lora_pair *l, int64_t n)
{
	if (!l || !l->A || !l->B || l->r <= 0 || l->in <= 0 || l->out <= 0 || n < 0)
		return sk_fail("%s", _("LoRA: invalid pair"));
	return 0;
}

int sk_cuda_op_lora_fwd(sk_backend *be, const sk_lora_pair *l, const float *x, int64_t n, float dropout,
                        uint64_t seed, float *y)
{
	if (valid_pair(l, n) != 0)
		return -1;
	if (n == 0)
		return 0;
	int bad;
	const sk_cuda_lora *dl = sk_cuda_be_pair(be, l, &bad);
	if (!dl)
		return sk_fail("%s", _("LoRA: the pair is not on the GPU"));
	int r;
	PROF(be, "lora_fwd", r = sk_cuda_lora_fwd(ctx(be), dl, x, n, dropout, seed, y));
	return r ? sk_cuda_be_fail(be) : 0;
}

int sk_cuda_op_linear_lora_fwd(sk_backend *be, const sk_tensor *w, const float *x, int64_t n, float *y,
                               const sk_lora_pair *l, float dropout, uint64_t seed)
{
	const sk_cuda_weight *cw = w->device == SK_DEVICE_CUDA ? w->data : NULL;
	if (cw && sk_cuda_lora_fold_on(ctx(be)) && valid_pair(l, n) == 0 && n > 0) {
		int bad;
		const sk_cuda_lora *dl = sk_cuda_be_pair(be, l, &bad);
		int r = 0;
		if (dl)
			PROF(be, "linear+lora folded", r = sk_cuda_linear_lora_fold(ctx(be), cw, x, n, y, dl, dropout, seed));
		if (r < 0)
			return sk_cuda_be_fail(be);
		if (r == 1)
			return 0;
	}
	if (be->ops->linear(be, w, x, n, y, NULL, NULL) != 0)
		return -1;
	return sk_cuda_op_lora_fwd(be, l, x, n, dropout, seed, y);
}

int sk_cuda_op_lora_bwd(sk_backend *be, const sk_lora_pair *l, const float *x, const float *dy, int64_t n,
                        float dropout, uint64_t seed, float *gA, float *gB, float *dx)
{
	if (valid_pair(l, n) != 0)
		return -1;
	if (n == 0)
		return 0;
	int bad;
	const sk_cuda_lora *dl = sk_cuda_be_pair(be, l, &bad);
	if (!dl)
		return sk_fail("%s", _("LoRA: the pair is not on the GPU"));
	/* the host pointers say which gradients are wanted; the device's take them */
	float *dgA = gA ? sk_cuda_be_grad(be, l, 0) : NULL, *dgB = gB ? sk_cuda_be_grad(be, l, 1) : NULL;
	if ((gA && !dgA) || (gB && !dgB))
		return sk_fail("%s", _("LoRA: the pair is not of the adapter being trained"));
	int r;
	PROF(be, "lora_bwd", r = sk_cuda_lora_bwd(ctx(be), dl, x, dy, n, dropout, seed, dgA, dgB, dx));
	return r ? sk_cuda_be_fail(be) : 0;
}

int sk_cuda_op_linear_bwd(sk_backend *be, const sk_tensor *w, const float *dy, int64_t n, float *dx, int accumulate)
{
	const sk_cuda_weight *cw = w->device == SK_DEVICE_CUDA ? w->data : NULL;
	if (!cw)
		return sk_fail("%s", _("linear: the weight is not on the GPU"));
	if (n <= 0)
		return 0;
	int r;
	PROF(be, cw->kind == SK_CUDA_W_NF4 ? "linear_bwd nf4" : "linear_bwd bf16",
	     r = sk_cuda_linear_bwd(ctx(be), cw, dy, n, dx, accumulate));
	return r ? sk_cuda_be_fail(be) : 0;
}

int sk_cuda_op_linear_lora_bwd(sk_backend *be, const sk_tensor *w, const sk_lora_pair *l, const float *x,
                               const float *dy, int64_t n, float dropout, uint64_t seed, float *gA, float *gB,
                               float *dx, int accumulate)
{
	const sk_cuda_weight *cw = w->device == SK_DEVICE_CUDA ? w->data : NULL;
	if (cw && valid_pair(l, n) == 0 && n > 0 && gA && gB && dx) {
		int bad;
		const sk_cuda_lora *dl = sk_cuda_be_pair(be, l, &bad);
		float *dgA = dl ? sk_cuda_be_grad(be, l, 0) : NULL, *dgB = dl ? sk_cuda_be_grad(be, l, 1) : NULL;
		int r = 0;
		if (dl && dgA && dgB)
			PROF(be, "linear+lora bwd", r = sk_cuda_linear_lora_bwd(ctx(be), cw, dl, x, dy, n, dropout, seed, dgA,
			                                                        dgB, dx, accumulate));
		if (r < 0)
			return sk_cuda_be_fail(be);
		if (r == 1)
			return 0;
	}
	if (sk_cuda_op_linear_bwd(be, w, dy, n, dx, accumulate) != 0)
		return -1;
	return sk_cuda_op_lora_bwd(be, l, x, dy, n, dropout, seed, gA, gB, dx);
}

/* One projection of a fused op on the device: its weight, its LoRA pair's
 * device copy and, where gA/gB are asked for (the host pointers hga, hgb
 * say which), the pair's device gradients. 1 when everything asked for is
 * there, else 0. */
static int device_proj(sk_backend *be, const sk_tensor *t, const sk_lora_pair *lp, int64_t rows, const float *hga,
                       const float *hgb, const sk_cuda_weight **w, const sk_cuda_lora **l, float **gA, float **gB)
{
	int bad;
	*w = t && t->device == SK_DEVICE_CUDA ? t->data : NULL;
	*l = lp && valid_pair(lp, rows) == 0 ? sk_cuda_be_pair(be, lp, &bad) : NULL;
	if (!*w || !*l)
		return 0;
	if (!gA)
		return 1;
	*gA = hga ? sk_cuda_be_grad(be, lp, 0) : NULL;
	*gB = hgb ? sk_cuda_be_grad(be, lp, 1) : NULL;
	return *gA && *gB;
}

int sk_cuda_op_gated_bwd(sk_backend *be, const sk_gated_bwd *a)
{
	sk_cuda_gated_bwd d = { a->g, a->u, a->dz, a->rows, a->dim, a->sparsity_z, a->dg, a->x,
		                { NULL, NULL }, { NULL, NULL }, a->dropout, { a->seed[0], a->seed[1] },
		                { NULL, NULL }, { NULL, NULL }, a->dx, 0 };
	if (a->rows <= 0)
		return 0;
	for (int k = 0; k < 2; k++)
		if (!device_proj(be, a->w[k], a->l[k], a->rows, a->gA[k], a->gB[k], &d.w[k], &d.l[k], &d.gA[k], &d.gB[k]))
			return 0;
	int r;
	PROF(be, "gated bwd", r = sk_cuda_gelu_lora_bwd2(ctx(be), &d));
	return r < 0 ? sk_cuda_be_fail(be) : r;
}

int sk_cuda_op_gated_mlp(sk_backend *be, const sk_gated_mlp *a)
{
	sk_cuda_gated_mlp d = { { NULL, NULL, NULL }, { NULL, NULL, NULL }, a->x, a->rows, a->dropout, a->sparsity_z, a->y,
		                a->g, a->u, a->z };
	if (a->rows <= 0)
		return 0;
	for (int k = 0; k < 3; k++)
		if (!device_proj(be, a->w[k], a->l[k], a->rows, NULL, NULL, &d.w[k], &d.l[k], NULL, NULL))
			return 0;
	int r;
	PROF(be, "gated mlp", r = sk_cuda_gated_mlp_fwd(ctx(be), &d));
	return r < 0 ? sk_cuda_be_fail(be) : r;
}

int sk_cuda_op_gated_mlp_bwd(sk_backend *be, const sk_gated_mlp_bwd *a)
{
	sk_cuda_gated_mlp_bwd d = { { NULL, NULL, NULL }, { NULL, NULL, NULL }, a->x, a->rows, a->sparsity_z, a->g, a->u,
		                    a->z, a->dy, { NULL, NULL, NULL }, { NULL, NULL, NULL }, a->dx, a->work };
	for (int k = 0; k < 3; k++)
		if (!device_proj(be, a->w[k], a->l[k], a->rows, a->gA[k], a->gB[k], &d.w[k], &d.l[k], &d.gA[k], &d.gB[k]))
			return sk_fail("%s", _("the fused MLP's backward: a weight, pair or gradient is not on the GPU"));
	int r;
	PROF(be, "gated mlp bwd", r = sk_cuda_gated_mlp_backward(ctx(be), &d));
	return r ? sk_cuda_be_fail(be) : 0;
}

void sk_cuda_op_rmsnorm_bwd(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *w, float eps,
                            const float *dy, float *dx, int accumulate)
{
	PROF(be, "rmsnorm_bwd", sk_cuda_rmsnorm_bwd(ctx(be), x, rows, dim, w, eps, dy, dx, accumulate));
}

void sk_cuda_op_rope_bwd(sk_backend *be, float *d, int64_t n, int heads, int hd, const int32_t *pos, float theta,
                         float factor)
{
	PROF(be, "rope_bwd", sk_cuda_rope_bwd(ctx(be), d, n, heads, hd, pos, theta, factor));
}

int sk_cuda_op_attention_bwd(sk_backend *be, const float *q, const float *k, const float *v, int64_t n, int nh,
                             int nkv, int hd, int window, float scale, float softcap, const float *dout, float *dq,
                             float *dk, float *dv, float *ws)
{
	if (n <= 0)
		return 0;
	if (nkv <= 0 || nh % nkv != 0)
		return sk_fail("%s", _("attention: the query heads are not a multiple of the KV heads"));
	int r;
	PROF(be, "attention_bwd", r = sk_cuda_attention_bwd(ctx(be), q, k, v, n, nh, nkv, hd, window, scale, softcap,
	                                                     dout, dq, dk, dv, ws));
	return r ? sk_cuda_be_fail(be) : 0;
}

int sk_cuda_op_attention_bwd_spans(sk_backend *be, const float *q, const float *k, const float *v,
                                   const sk_row_span *spans, int n_spans, int nh, int nkv, int hd, int window,
                                   float scale, float softcap, const float *dout, float *dq, float *dk, float *dv,
                                   float *ws)
{
	if (nkv <= 0 || nh % nkv != 0)
		return sk_fail("%s", _("attention: the query heads are not a multiple of the KV heads"));
	sk_cuda_span *s = sk_cuda_be_spans(spans, n_spans);
	if (!s)
		return -1;
	int r;
	PROF(be, "attention_bwd", r = sk_cuda_attention_bwd_spans(ctx(be), q, k, v, s, n_spans, nh, nkv, hd, window,
	                                                          scale, softcap, dout, dq, dk, dv, ws));
	free(s);
	return r ? sk_cuda_be_fail(be) : 0;
}

void sk_cuda_op_gelu_mul_bwd(sk_backend *be, const float *g, const float *u, int64_t rows, int64_t dim,
                             float sparsity_z, const float *dh, float *dg, float *du)
{
	PROF(be, "gelu_mul_bwd", sk_cuda_gelu_mul_bwd(ctx(be), g, u, rows, dim, sparsity_z, dh, dg, du));
}

void sk_cuda_op_rescale_rms_bwd(sk_backend *be, const float *u, const float *ref, int64_t rows, int64_t dim,
                                const float *dy, float *du, float *dref)
{
	PROF(be, "rescale_rms_bwd", sk_cuda_rescale_rms_bwd(ctx(be), u, ref, rows, dim, dy, du, dref));
}

void sk_cuda_op_altup_router_bwd(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *norm_w,
                                 float eps, const float *w, int A, const float *out, const float *dout, float *dx)
{
	PROF(be, "altup_router_bwd", sk_cuda_altup_router_bwd(ctx(be), x, rows, dim, norm_w, eps, w, A, out, dout, dx));
}

void sk_cuda_op_altup_predict_bwd(sk_backend *be, const float *x, int64_t rows, int64_t dim, int A, const float *wp,
                                  const float *modal, const float *dp, float *dx, float *dmodal)
{
	PROF(be, "altup_predict_bwd", sk_cuda_altup_predict_bwd(ctx(be), x, rows, dim, A, wp, modal, dp, dx, dmodal));
}

void sk_cuda_op_altup_correct_bwd(sk_backend *be, const float *p, const float *y, int64_t rows, int64_t dim, int A,
                                  int active, const float *wc, const float *modal, const float *dc, float *dp,
                                  float *dy, float *dmodal)
{
	PROF(be, "altup_correct_bwd",
	     sk_cuda_altup_correct_bwd(ctx(be), p, y, rows, dim, A, active, wc, modal, dc, dp, dy, dmodal));
}

void sk_cuda_op_xent_chunk(sk_backend *be, float *z, int64_t n, int64_t cw, int64_t col0, float cap,
                           const int32_t *labels, float *mx, float *se, float *lab)
{
	PROF(be, "xent_chunk", sk_cuda_xent_chunk(ctx(be), z, n, cw, col0, cap, labels, mx, se, lab));
}

void sk_cuda_op_xent_chunk_grad(sk_backend *be, float *z, int64_t n, int64_t cw, int64_t col0, float cap,
                                const int32_t *labels, const float *lse, const float *coef)
{
	PROF(be, "xent_chunk_grad", sk_cuda_xent_chunk_grad(ctx(be), z, n, cw, col0, cap, labels, lse, coef));
}

int sk_cuda_op_head_lse(sk_backend *be, const sk_tensor *embed, int64_t V, const float *hn, int64_t n, int64_t cw,
                        float cap, const int32_t *labels, float *z, float *mx, float *se, float *lab)
{
	const sk_cuda_weight *E = embed->device == SK_DEVICE_CUDA ? embed->data : NULL;
	int r = 0;
	if (E)
		PROF(be, "head_lse", r = sk_cuda_head_lse(ctx(be), E, V, hn, n, cw, cap, labels, z, mx, se, lab));
	return r < 0 ? sk_cuda_be_fail(be) : r;
}

int sk_cuda_op_head_grad(sk_backend *be, const sk_tensor *embed, int64_t V, const float *hn, int64_t n, int64_t cw,
                         float cap, const int32_t *labels, const float *lse, const float *coef, float *z, float *dhn)
{
	const sk_cuda_weight *E = embed->device == SK_DEVICE_CUDA ? embed->data : NULL;
	int r = 0;
	if (E)
		PROF(be, "head_grad", r = sk_cuda_head_grad(ctx(be), E, V, hn, n, cw, cap, labels, lse, coef, z, dhn));
	return r < 0 ? sk_cuda_be_fail(be) : r;
}
