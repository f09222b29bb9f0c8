/* Training pass of the Gemma 3n / Gemma 3 decoder (train_grad.h): the
 * forward of gemma.c over whole sequences from position 0 (no KV cache),
 * recording what the backward needs, the fused loss (loss.c), and the
 * backward to the LoRA factors (gemma3n-architecture.md §6), all over the
 * backend ops table. Frozen weights get no gradients; gradients stop at
 * the embedding and the per-layer inputs, which no LoRA factor feeds.
 *
 * Memory: every activation lives in the model's arena, sized once per
 * call. With grad_ckpt only each layer's input streams (and the K/V of
 * the KV-owning layers, which KV-shared layers read) are kept; a layer's
 * other activations are recomputed from its input just before its
 * backward. Without it every layer keeps its own record. */
#include <math.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/model/lora_internal.h"
#include "engine/train/train_grad.h"
#include "engine/train/train_internal.h"

#define OPS (w->ops)

/* What one layer's backward reads from its forward. */
typedef struct {
	float *modal1, *p, *nrm, *lr, *lam0;       /* AltUp predict, input norm, LAuReL */
	float *q0, *q, *k0, *v0, *att, *o;         /* attention: pre-norm q/k/v, roped q, heads' output, o_proj out */
	float *h1, *mm, *g0, *u, *z, *f;           /* MLP input, its norm, gate/up outputs, gated product, down out */
	float *y, *modal2, *vin, *pg0, *psi0;      /* AltUp correct and the per-layer input */
} layer_rec;

typedef struct {
	const sk_backend_ops *ops;
	sk_lora *ad;
	float dropout;
	uint64_t seed;
	int64_t N, n_out;
	int n_seqs;
	int32_t *ids, *ple_ids, *pos, *labels;
	int64_t *seq_row, *sel;
	float *pli;                 /* [N][L·P] */
	float **xs;                 /* L + 1 stream sets [A][N][H]: layer l reads xs[l] */
	float *kst, *vst;           /* K (normed, roped) and V (normed) of the owning layers [n_kv][N][kvd] */
	float *dk, *dv;             /* their gradients, consumers' included */
	layer_rec *rec;
	int n_rec;
	float *t1, *t2, *t3, *tP;   /* [N][wide], [N][wide], [N][max(wide, L·P)], [N][P] */
	float *dx, *dxp, *dp;       /* [A][N][H] */
	float *dy, *dg;             /* [N][H] */
	float *dF1, *dF2;           /* [N][F] */
	float *dq, *datt;           /* [N][qd] */
	float *dkv;                 /* [N][kvd] */
	float *dm;                  /* [N][A] */
	float *dlr;                 /* [N][R] */
	float *aws;                 /* attention backward: [2][N][nh] */
	float *hs, *vk, *dhs;       /* head: [A][n_out][H], [A-1][n_out][H], [A][n_out][H] */
	float *hsum, *hn, *dhn, *dh, *dvk; /* [n_out][H] */
	sk_loss_ws lw;
} tws;

static int64_t max_ffn(const sk_config *c)
{
	int64_t F = 0;
	for (int l = 0; l < c->num_layers; l++)
		if (c->intermediate_size[l] > F)
			F = c->intermediate_size[l];
	return F;
}

static void plan(sk_arena *a, const sk_model *m, int64_t N, int64_t n_out, int n_seqs, int n_rec, int want_grad,
                 tws *w)
{
	const sk_config *c = &m->cfg;
	int n3 = c->arch == SK_ARCH_GEMMA3N;
	int64_t H = c->hidden_size, qd = (int64_t)c->num_heads * c->head_dim;
	int64_t kvd = (int64_t)c->num_kv_heads * c->head_dim, F = max_ffn(c);
	int64_t A = n3 ? c->altup_num_inputs : 1, P = n3 ? c->hidden_size_per_layer_input : 0;
	int64_t LP = (int64_t)c->num_layers * P, R = n3 ? c->laurel_rank : 0;
	int64_t wide = H > qd ? H : qd, L = c->num_layers, nkv = m->n_kv_layers;
	int64_t NO = n_out > 0 ? n_out : 1;
#define FL(n) sk_arena_floats(a, (size_t)(n))
	w->ids = sk_arena_alloc(a, (size_t)N * sizeof(int32_t));
	w->ple_ids = sk_arena_alloc(a, (size_t)N * sizeof(int32_t));
	w->pos = sk_arena_alloc(a, (size_t)N * sizeof(int32_t));
	w->labels = sk_arena_alloc(a, (size_t)NO * sizeof(int32_t));
	w->seq_row = sk_arena_alloc(a, (size_t)(n_seqs + 1) * sizeof(int64_t));
	w->sel = sk_arena_alloc(a, (size_t)NO * sizeof(int64_t));
	w->xs = sk_arena_alloc(a, (size_t)(L + 1) * sizeof(float *));
	/* the measuring pass gets NULL for every pointer: fill only a real array */
	float *xs0 = FL((L + 1) * A * N * H);
	if (w->xs)
		for (int64_t l = 0; l <= L; l++)
			w->xs[l] = xs0 + l * A * N * H;
	w->pli = n3 ? FL(N * LP) : NULL;
	w->kst = FL(nkv * N * kvd);
	w->vst = FL(nkv * N * kvd);
	w->rec = sk_arena_alloc(a, (size_t)n_rec * sizeof(layer_rec));
	for (int i = 0; i < n_rec; i++) {
		layer_rec r;
		r.modal1 = n3 ? FL(N * A) : NULL;
		r.p = n3 ? FL(A * N * H) : NULL;
		r.nrm = FL(N * H);
		r.lr = n3 ? FL(N * R) : NULL;
		r.lam0 = n3 ? FL(N * H) : NULL;
		r.q0 = FL(N * qd);
		r.q = FL(N * qd);
		r.k0 = FL(N * kvd);
		r.v0 = FL(N * kvd);
		r.att = FL(N * qd);
		r.o = FL(N * H);
		r.h1 = FL(N * H);
		r.mm = FL(N * H);
		r.g0 = FL(N * F);
		r.u = FL(N * F);
		r.z = FL(N * F);
		r.f = FL(N * H);
		r.y = n3 ? FL(N * H) : NULL;
		r.modal2 = n3 ? FL(N * A) : NULL;
		r.vin = n3 ? FL(N * H) : NULL;
		r.pg0 = n3 ? FL(N * P) : NULL;
		r.psi0 = n3 ? FL(N * H) : NULL;
		if (w->rec)
			w->rec[i] = r;
	}
	w->n_rec = n_rec;
	w->t1 = FL(N * wide);
	w->t2 = FL(N * wide);
	w->t3 = FL(N * (LP > wide ? LP : wide));
	w->tP = n3 ? FL(N * P) : NULL;
	if (want_grad) {
		w->dk = FL(nkv * N * kvd);
		w->dv = FL(nkv * N * kvd);
		w->dx = FL(A * N * H);
		w->dxp = FL(A * N * H);
		w->dp = n3 ? FL(A * N * H) : NULL;
		w->dy = FL(N * H);
		w->dg = FL(N * H);
		w->dF1 = FL(N * F);
		w->dF2 = FL(N * F);
		w->dq = FL(N * qd);
		w->datt = FL(N * qd);
		w->dkv = FL(N * kvd);
		w->dm = n3 ? FL(N * A) : NULL;
		w->dlr = n3 ? FL(N * R) : NULL;
		w->aws = FL(2 * N * c->num_heads);
		w->dhs = FL(A * NO * H);
		w->dhn = FL(NO * H);
		w->dh = FL(NO * H);
		w->dvk = FL(NO * H);
	}
	w->hs = FL(A * NO * H);
	w->vk = n3 ? FL((A - 1) * NO * H) : NULL;
	w->hsum = FL(NO * H);
	w->hn = FL(NO * H);
#undef FL
	sk_loss_plan(a, n_out, m->vocab, &w->lw);
}

/* ---- forward ---- */

static uint64_t lora_seed(const tws *w, int layer, int mod)
{
	return w->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(layer * SK_LORA_NMOD + mod + 1));
}

static const sk_lora_pair *pair_of(const tws *w, int layer, int mod)
{
	return w->ad && mod >= 0 ? sk_lora_get(w->ad, layer, (sk_lora_module)mod) : NULL;
}

/* y = x Wᵀ, plus the LoRA branch (with dropout) when the adapter has the pair */
static int tlin(sk_model *m, const tws *w, const sk_tensor *t, int layer, int mod, const float *x, int64_t n, float *y)
{
	if (OPS->linear(m->be, t, x, n, y, NULL, NULL) != 0)
		return -1;
	const sk_lora_pair *lp = pair_of(w, layer, mod);
	if (lp)
		return OPS->lora_fwd(m->be, lp, x, n, w->dropout, lora_seed(w, layer, mod), y);
	return 0;
}

typedef struct {
	float theta, factor;
	int window;
} rope_cfg;

static rope_cfg layer_rope(const sk_config *c, const sk_layer *L)
{
	rope_cfg r;
	r.theta = L->sliding ? c->rope_theta_local : c->rope_theta_global;
	sk_rope_scaling rs = L->sliding ? c->rope_scaling_local : c->rope_scaling_global;
	r.factor = rs == SK_ROPE_LINEAR ? (L->sliding ? c->rope_factor_local : c->rope_factor_global) : 1.0f;
	if (!(r.factor > 0))
		r.factor = 1.0f;
	r.window = L->sliding ? c->sliding_window : 0;
	return r;
}

static int attn_fwd(sk_model *m, tws *w, int l, layer_rec *a)
{
	const sk_config *c = &m->cfg;
	const sk_layer *L = &m->layers[l];
	int64_t N = w->N;
	int hd = c->head_dim, nh = c->num_heads, nkv = c->num_kv_heads;
	int64_t kvd = (int64_t)nkv * hd, qd = (int64_t)nh * hd;
	float eps = c->rms_norm_eps;
	rope_cfg rc = layer_rope(c, L);
	if (tlin(m, w, &L->q, l, SK_LORA_Q, a->nrm, N, a->q0) != 0)
		return -1;
	OPS->rmsnorm(m->be, a->q0, N * nh, hd, L->q_norm, eps, a->q);
	OPS->rope(m->be, a->q, N, nh, hd, w->pos, rc.theta, rc.factor);
	const sk_layer *S = &m->layers[L->kv_src];
	float *kn = w->kst + (int64_t)S->kv_slot * N * kvd, *vn = w->vst + (int64_t)S->kv_slot * N * kvd;
	if (L->kv_slot >= 0) {
		if (tlin(m, w, &L->k, l, SK_LORA_K, a->nrm, N, a->k0) != 0 ||
		    tlin(m, w, &L->v, l, SK_LORA_V, a->nrm, N, a->v0) != 0)
			return -1;
		OPS->rmsnorm(m->be, a->k0, N * nkv, hd, L->k_norm, eps, kn);
		OPS->rope(m->be, kn, N, nkv, hd, w->pos, rc.theta, rc.factor);
		if (c->arch == SK_ARCH_GEMMA3N)
			OPS->rmsnorm(m->be, a->v0, N * nkv, hd, NULL, eps, vn);
		else
			memcpy(vn, a->v0, (size_t)(N * kvd) * sizeof(float));
	}
	for (int s = 0; s < w->n_seqs; s++) {
		int64_t r0 = w->seq_row[s], rn = w->seq_row[s + 1] - r0;
		sk_attn_kv kv = { NULL, NULL, 1, 0, 0, kn + r0 * kvd, vn + r0 * kvd };
		if (OPS->attention(m->be, a->q + r0 * qd, rn, &kv, nh, nkv, hd, rc.window, sk_config_attn_scale(c),
		                   c->attn_logit_softcap, a->att + r0 * qd) != 0)
			return -1;
	}
	return tlin(m, w, &L->o, l, SK_LORA_O, a->att, N, a->o);
}

static int mlp_fwd(sk_model *m, tws *w, int l, layer_rec *a)
{
	const sk_layer *L = &m->layers[l];
	int64_t N = w->N;
	if (tlin(m, w, &L->gate, l, SK_LORA_GATE, a->mm, N, a->g0) != 0 ||
	    tlin(m, w, &L->up, l, SK_LORA_UP, a->mm, N, a->u) != 0)
		return -1;
	memcpy(a->z, a->g0, (size_t)(N * L->ffn) * sizeof(float));
	OPS->gelu_mul(m->be, a->z, a->u, N, L->ffn, L->sparsity_z);
	return tlin(m, w, &L->down, l, SK_LORA_DOWN, a->z, N, a->f);
}

static int fwd_gemma3(sk_model *m, tws *w, int l, layer_rec *a, const float *x, float *out)
{
	const sk_config *c = &m->cfg;
	const sk_layer *L = &m->layers[l];
	int64_t N = w->N, H = c->hidden_size;
	float eps = c->rms_norm_eps;
	OPS->rmsnorm(m->be, x, N, H, L->attn_norm, eps, a->nrm);
	if (attn_fwd(m, w, l, a) != 0)
		return -1;
	OPS->rmsnorm(m->be, a->o, N, H, L->post_attn_norm, eps, w->t2);
	OPS->add(m->be, x, w->t2, N * H, 1.0f, a->h1);
	OPS->rmsnorm(m->be, a->h1, N, H, L->pre_ffn_norm, eps, a->mm);
	if (mlp_fwd(m, w, l, a) != 0)
		return -1;
	OPS->rmsnorm(m->be, a->f, N, H, L->post_ffn_norm, eps, w->t2);
	OPS->add(m->be, a->h1, w->t2, N * H, 1.0f, out);
	return 0;
}

static int fwd_gemma3n(sk_model *m, tws *w, int l, layer_rec *a, const float *x, float *out)
{
	const sk_config *c = &m->cfg;
	const sk_layer *L = &m->layers[l];
	int64_t N = w->N, H = c->hidden_size, P = c->hidden_size_per_layer_input, LP = (int64_t)c->num_layers * P;
	int A = c->altup_num_inputs, act = c->altup_active_idx;
	float eps = c->rms_norm_eps;
	const float rsqrt2 = (float)(1.0 / sqrt(2.0));

	OPS->altup_router(m->be, x + act * N * H, N, H, L->router_norm, eps, L->router, A, a->modal1);
	OPS->altup_predict(m->be, x, N, H, A, L->pred_coef, a->modal1, a->p);
	const float *pa = a->p + act * N * H;
	OPS->rmsnorm(m->be, pa, N, H, L->attn_norm, eps, a->nrm);

	if (tlin(m, w, &L->laurel_l, l, -1, a->nrm, N, a->lr) != 0 ||
	    tlin(m, w, &L->laurel_r, l, -1, a->lr, N, a->lam0) != 0)
		return -1;
	OPS->rmsnorm(m->be, a->lam0, N, H, L->laurel_norm, eps, w->t1);
	OPS->add(m->be, a->nrm, w->t1, N * H, 1.0f, w->t1); /* λ */

	if (attn_fwd(m, w, l, a) != 0)
		return -1;
	OPS->rmsnorm(m->be, a->o, N, H, L->post_attn_norm, eps, w->t2);
	OPS->add(m->be, pa, w->t2, N * H, 1.0f, a->h1);
	OPS->add(m->be, a->h1, w->t1, N * H, rsqrt2, a->h1);

	OPS->rmsnorm(m->be, a->h1, N, H, L->pre_ffn_norm, eps, a->mm);
	if (mlp_fwd(m, w, l, a) != 0)
		return -1;
	OPS->rmsnorm(m->be, a->f, N, H, L->post_ffn_norm, eps, w->t2);
	OPS->add(m->be, a->h1, w->t2, N * H, 1.0f, a->y);

	OPS->altup_router(m->be, a->y, N, H, L->router_norm, eps, L->router, A, a->modal2);
	OPS->altup_correct(m->be, a->p, a->y, N, H, A, act, L->corr_coef, a->modal2, out);

	const float *ca = out + act * N * H;
	if (c->altup_correct_scale)
		OPS->mul_rows(m->be, ca, L->altup_scale, N, H, a->vin);
	else
		memcpy(a->vin, ca, (size_t)(N * H) * sizeof(float));
	if (tlin(m, w, &L->ple_gate, l, -1, a->vin, N, a->pg0) != 0)
		return -1;
	memcpy(w->tP, a->pg0, (size_t)(N * P) * sizeof(float));
	OPS->gelu_mul(m->be, w->tP, NULL, N, P, 0.0f);
	for (int64_t r = 0; r < N; r++)
		OPS->mul_rows(m->be, w->tP + r * P, w->pli + r * LP + (int64_t)l * P, 1, P, w->tP + r * P);
	if (tlin(m, w, &L->ple_proj, l, -1, w->tP, N, a->psi0) != 0)
		return -1;
	OPS->rmsnorm(m->be, a->psi0, N, H, L->ple_post_norm, eps, w->t2);
	for (int k = 0; k < A; k++)
		if (k != act)
			OPS->add(m->be, out + k * N * H, w->t2, N * H, 1.0f, out + k * N * H);
	return 0;
}

static int fwd_layer(sk_model *m, tws *w, int l, layer_rec *a)
{
	return m->cfg.arch == SK_ARCH_GEMMA3N ? fwd_gemma3n(m, w, l, a, w->xs[l], w->xs[l + 1])
	                                      : fwd_gemma3(m, w, l, a, w->xs[l], w->xs[l + 1]);
}

/* Embedding, per-layer inputs and the AltUp streams into xs[0] (as gemma.c). */
static int embed_inputs(sk_model *m, tws *w)
{
	const sk_config *c = &m->cfg;
	int64_t N = w->N, H = c->hidden_size;
	float *x = w->xs[0];
	if (OPS->embed(m->be, &m->embed, w->ids, N, m->embed_scale, x) != 0)
		return -1;
	if (c->arch != SK_ARCH_GEMMA3N)
		return 0;
	int64_t P = c->hidden_size_per_layer_input, LP = (int64_t)c->num_layers * P;
	int A = c->altup_num_inputs;
	int64_t prow = sk_tensor_rows(&m->ple_embed);
	for (int64_t i = 0; i < N; i++)
		w->ple_ids[i] = w->ids[i] < c->vocab_size_per_layer_input && w->ids[i] < prow ? w->ids[i] : 0;
	if (OPS->embed(m->be, &m->ple_embed, w->ple_ids, N, m->ple_scale, w->t3) != 0)
		return -1;
	if (OPS->linear(m->be, &m->ple_model_proj, x, N, w->pli, NULL, NULL) != 0)
		return -1;
	const float pscale = (float)pow((double)H, -0.5);
	for (int64_t i = 0; i < N * LP; i++)
		w->pli[i] *= pscale;
	OPS->rmsnorm(m->be, w->pli, N * c->num_layers, P, m->ple_proj_norm, c->rms_norm_eps, w->pli);
	OPS->add(m->be, w->pli, w->t3, N * LP, (float)(1.0 / sqrt(2.0)), w->pli);
	for (int k = 1; k < A; k++) {
		float *xk = x + k * N * H;
		if (OPS->linear(m->be, &m->altup_proj[k - 1], x, N, xk, NULL, NULL) != 0)
			return -1;
		OPS->rescale_rms(m->be, xk, x, N, H);
	}
	return 0;
}

/* Final hidden state of the selected rows into w->hn (§3.8), keeping what
 * the backward of this part needs. */
static int head_fwd(sk_model *m, tws *w)
{
	const sk_config *c = &m->cfg;
	int64_t H = c->hidden_size, no = w->n_out, N = w->N;
	const float *x = w->xs[c->num_layers];
	int A = c->arch == SK_ARCH_GEMMA3N ? c->altup_num_inputs : 1;
	int act = c->arch == SK_ARCH_GEMMA3N ? c->altup_active_idx : 0;
	for (int k = 0; k < A; k++)
		for (int64_t i = 0; i < no; i++)
			memcpy(w->hs + (k * no + i) * H, x + (k * N + w->sel[i]) * H, (size_t)H * sizeof(float));
	const float *x0 = w->hs + act * no * H;
	memcpy(w->hsum, x0, (size_t)(no * H) * sizeof(float));
	int j = 0;
	for (int k = 0; k < A; k++) {
		if (k == act)
			continue;
		float *vk = w->vk + j * no * H;
		if (OPS->linear(m->be, &m->altup_unembed[j], w->hs + k * no * H, no, vk, NULL, NULL) != 0)
			return -1;
		memcpy(w->hn, vk, (size_t)(no * H) * sizeof(float));
		OPS->rescale_rms(m->be, w->hn, x0, no, H);
		OPS->add(m->be, w->hsum, w->hn, no * H, 1.0f, w->hsum);
		j++;
	}
	if (A > 1)
		for (int64_t i = 0; i < no * H; i++)
			w->hsum[i] /= (float)A;
	OPS->rmsnorm(m->be, w->hsum, no, H, m->final_norm, c->rms_norm_eps, w->hn);
	return 0;
}

/* ---- backward ---- */

/* dx (+)= dy W, and the LoRA pair's gradients and input gradient */
static int tlin_bwd(sk_model *m, const tws *w, const sk_tensor *t, int layer, int mod, const float *x, const float *dy,
                    int64_t n, float *dx, int accumulate)
{
	if (OPS->linear_bwd(m->be, t, dy, n, dx, accumulate) != 0)
		return -1;
	const sk_lora_pair *lp = pair_of(w, layer, mod);
	if (!lp)
		return 0;
	float *gA = sk_lora_grad_of(w->ad, layer, (sk_lora_module)mod, 0);
	float *gB = sk_lora_grad_of(w->ad, layer, (sk_lora_module)mod, 1);
	return OPS->lora_bwd(m->be, lp, x, dy, n, w->dropout, lora_seed(w, layer, mod), gA, gB, dx);
}

/* From the gradient of o_proj's output (do_) to the gradient of the normed
 * layer input, written to dn; K/V gradients go to the owning layer's
 * accumulators, and an owning layer takes them (consumers' included) back
 * through its k/v norms, RoPE and projections. */
static int attn_bwd(sk_model *m, tws *w, int l, const layer_rec *a, const float *do_, float *dn)
{
	const sk_config *c = &m->cfg;
	const sk_layer *L = &m->layers[l];
	int64_t N = w->N;
	int hd = c->head_dim, nh = c->num_heads, nkv = c->num_kv_heads;
	int64_t kvd = (int64_t)nkv * hd, qd = (int64_t)nh * hd;
	float eps = c->rms_norm_eps;
	rope_cfg rc = layer_rope(c, L);
	if (tlin_bwd(m, w, &L->o, l, SK_LORA_O, a->att, do_, N, w->datt, 0) != 0)
		return -1;
	const sk_layer *S = &m->layers[L->kv_src];
	int64_t off = (int64_t)S->kv_slot * N * kvd;
	for (int s = 0; s < w->n_seqs; s++) {
		int64_t r0 = w->seq_row[s], rn = w->seq_row[s + 1] - r0;
		int64_t kr = off + r0 * kvd;
		if (OPS->attention_bwd(m->be, a->q + r0 * qd, w->kst + kr, w->vst + kr, rn, nh, nkv, hd, rc.window,
		                       sk_config_attn_scale(c), c->attn_logit_softcap, w->datt + r0 * qd, w->dq + r0 * qd,
		                       w->dk + kr, w->dv + kr, w->aws) != 0)
			return -1;
	}
	OPS->rope_bwd(m->be, w->dq, N, nh, hd, w->pos, rc.theta, rc.factor);
	OPS->rmsnorm_bwd(m->be, a->q0, N * nh, hd, L->q_norm, eps, w->dq, w->dq, 0);
	if (tlin_bwd(m, w, &L->q, l, SK_LORA_Q, a->nrm, w->dq, N, dn, 0) != 0)
		return -1;
	if (L->kv_slot < 0)
		return 0;
	memcpy(w->dkv, w->dk + off, (size_t)(N * kvd) * sizeof(float));
	OPS->rope_bwd(m->be, w->dkv, N, nkv, hd, w->pos, rc.theta, rc.factor);
	OPS->rmsnorm_bwd(m->be, a->k0, N * nkv, hd, L->k_norm, eps, w->dkv, w->dkv, 0);
	if (tlin_bwd(m, w, &L->k, l, SK_LORA_K, a->nrm, w->dkv, N, dn, 1) != 0)
		return -1;
	memcpy(w->dkv, w->dv + off, (size_t)(N * kvd) * sizeof(float));
	if (c->arch == SK_ARCH_GEMMA3N)
		OPS->rmsnorm_bwd(m->be, a->v0, N * nkv, hd, NULL, eps, w->dkv, w->dkv, 0);
	return tlin_bwd(m, w, &L->v, l, SK_LORA_V, a->nrm, w->dkv, N, dn, 1);
}

/* MLP backward from dy (the gradient of y = h1 + RMS(f)): adds the MLP
 * path's contribution into dy, which then holds dL/dh1. */
static int mlp_bwd(sk_model *m, tws *w, int l, const layer_rec *a, float *dy)
{
	const sk_config *c = &m->cfg;
	const sk_layer *L = &m->layers[l];
	int64_t N = w->N, H = c->hidden_size;
	float eps = c->rms_norm_eps;
	OPS->rmsnorm_bwd(m->be, a->f, N, H, L->post_ffn_norm, eps, dy, w->t1, 0);
	if (tlin_bwd(m, w, &L->down, l, SK_LORA_DOWN, a->z, w->t1, N, w->dF1, 0) != 0)
		return -1;
	OPS->gelu_mul_bwd(m->be, a->g0, a->u, N, L->ffn, L->sparsity_z, w->dF1, w->dF1, w->dF2);
	if (tlin_bwd(m, w, &L->gate, l, SK_LORA_GATE, a->mm, w->dF1, N, w->t2, 0) != 0 ||
	    tlin_bwd(m, w, &L->up, l, SK_LORA_UP, a->mm, w->dF2, N, w->t2, 1) != 0)
		return -1;
	OPS->rmsnorm_bwd(m->be, a->h1, N, H, L->pre_ffn_norm, eps, w->t2, dy, 1);
	return 0;
}

static int bwd_gemma3(sk_model *m, tws *w, int l, const layer_rec *a, const float *x, float *dx, float *dxp)
{
	const sk_config *c = &m->cfg;
	const sk_layer *L = &m->layers[l];
	int64_t N = w->N, H = c->hidden_size;
	float eps = c->rms_norm_eps;
	if (mlp_bwd(m, w, l, a, dx) != 0) /* dx now holds the gradient of the mid-layer residual */
		return -1;
	OPS->rmsnorm_bwd(m->be, a->o, N, H, L->post_attn_norm, eps, dx, w->dy, 0);
	if (attn_bwd(m, w, l, a, w->dy, w->dg) != 0)
		return -1;
	memcpy(dxp, dx, (size_t)(N * H) * sizeof(float));
	OPS->rmsnorm_bwd(m->be, x, N, H, L->attn_norm, eps, w->dg, dxp, 1);
	return 0;
}

static int bwd_gemma3n(sk_model *m, tws *w, int l, const layer_rec *a, const float *x, float *dx, float *dxp)
{
	const sk_config *c = &m->cfg;
	const sk_layer *L = &m->layers[l];
	int64_t N = w->N, H = c->hidden_size, P = c->hidden_size_per_layer_input, LP = (int64_t)c->num_layers * P;
	int A = c->altup_num_inputs, act = c->altup_active_idx;
	float eps = c->rms_norm_eps;
	const float rsqrt2 = (float)(1.0 / sqrt(2.0));
	float *t1 = w->t1, *t2 = w->t2, *g = w->dg;

	/* per-layer input: ψ was added to every stream but the active one */
	int first = 1;
	for (int k = 0; k < A; k++) {
		if (k == act)
			continue;
		if (first)
			memcpy(t1, dx + k * N * H, (size_t)(N * H) * sizeof(float));
		else
			OPS->add(m->be, t1, dx + k * N * H, N * H, 1.0f, t1);
		first = 0;
	}
	OPS->rmsnorm_bwd(m->be, a->psi0, N, H, L->ple_post_norm, eps, t1, t1, 0);
	if (OPS->linear_bwd(m->be, &L->ple_proj, t1, N, w->tP, 0) != 0)
		return -1;
	for (int64_t r = 0; r < N; r++)
		OPS->mul_rows(m->be, w->tP + r * P, w->pli + r * LP + (int64_t)l * P, 1, P, w->tP + r * P);
	OPS->gelu_mul_bwd(m->be, a->pg0, NULL, N, P, 0.0f, w->tP, w->tP, NULL);
	if (OPS->linear_bwd(m->be, &L->ple_gate, w->tP, N, t1, 0) != 0)
		return -1;
	if (c->altup_correct_scale)
		OPS->mul_rows(m->be, t1, L->altup_scale, N, H, t1);
	OPS->add(m->be, dx + act * N * H, t1, N * H, 1.0f, dx + act * N * H);

	/* AltUp correct, its router included */
	OPS->altup_correct_bwd(m->be, a->p, a->y, N, H, A, act, L->corr_coef, a->modal2, dx, w->dp, w->dy, w->dm);
	OPS->altup_router_bwd(m->be, a->y, N, H, L->router_norm, eps, L->router, A, a->modal2, w->dm, w->dy);

	/* y = h1 + RMS(MLP(RMS(h1))) */
	if (mlp_bwd(m, w, l, a, w->dy) != 0)
		return -1;
	/* h1 = ((a + o') + λ) / √2 */
	for (int64_t i = 0; i < N * H; i++)
		g[i] = w->dy[i] * rsqrt2;

	OPS->rmsnorm_bwd(m->be, a->o, N, H, L->post_attn_norm, eps, g, t1, 0);
	if (attn_bwd(m, w, l, a, t1, t2) != 0)
		return -1;
	/* λ = n + RMS(W_r W_l n) */
	OPS->add(m->be, t2, g, N * H, 1.0f, t2);
	OPS->rmsnorm_bwd(m->be, a->lam0, N, H, L->laurel_norm, eps, g, t1, 0);
	if (OPS->linear_bwd(m->be, &L->laurel_r, t1, N, w->dlr, 0) != 0 ||
	    OPS->linear_bwd(m->be, &L->laurel_l, w->dlr, N, t2, 1) != 0)
		return -1;
	/* n = RMS(a): g becomes dL/da */
	const float *pa = a->p + act * N * H;
	OPS->rmsnorm_bwd(m->be, pa, N, H, L->attn_norm, eps, t2, g, 1);
	OPS->add(m->be, w->dp + act * N * H, g, N * H, 1.0f, w->dp + act * N * H);

	/* AltUp predict, its router included */
	OPS->altup_predict_bwd(m->be, x, N, H, A, L->pred_coef, a->modal1, w->dp, dxp, w->dm);
	OPS->altup_router_bwd(m->be, x + act * N * H, N, H, L->router_norm, eps, L->router, A, a->modal1, w->dm,
	                      dxp + act * N * H);
	return 0;
}

/* Gradient of the selected rows' final hidden states (w->dhn) into the
 * last layer's output streams (w->dx, other rows zero). */
static int head_bwd(sk_model *m, tws *w)
{
	const sk_config *c = &m->cfg;
	int64_t H = c->hidden_size, no = w->n_out, N = w->N;
	int n3 = c->arch == SK_ARCH_GEMMA3N;
	int A = n3 ? c->altup_num_inputs : 1, act = n3 ? c->altup_active_idx : 0;
	memset(w->dx, 0, (size_t)(A * N * H) * sizeof(float));
	OPS->rmsnorm_bwd(m->be, w->hsum, no, H, m->final_norm, c->rms_norm_eps, w->dhn, w->dh, 0);
	if (A > 1)
		for (int64_t i = 0; i < no * H; i++)
			w->dh[i] /= (float)A;
	float *dx0 = w->dhs + act * no * H;
	memcpy(dx0, w->dh, (size_t)(no * H) * sizeof(float));
	const float *x0 = w->hs + act * no * H;
	int j = 0;
	for (int k = 0; k < A; k++) {
		if (k == act)
			continue;
		OPS->rescale_rms_bwd(m->be, w->vk + j * no * H, x0, no, H, w->dh, w->dvk, dx0);
		if (OPS->linear_bwd(m->be, &m->altup_unembed[j], w->dvk, no, w->dhs + k * no * H, 0) != 0)
			return -1;
		j++;
	}
	for (int k = 0; k < A; k++)
		for (int64_t i = 0; i < no; i++)
			memcpy(w->dx + (k * N + w->sel[i]) * H, w->dhs + (k * no + i) * H, (size_t)H * sizeof(float));
	return 0;
}

static int check_seqs(const sk_model *m, sk_lora *adapter, const sk_train_seq *seqs, int n_seqs,
                      const sk_train_opts *o, int64_t *N, int64_t *n_out)
{
	if (!seqs || n_seqs < 1)
		return sk_fail("%s", _("training: no sequences given"));
	if (!(o->lora_dropout >= 0.0f && o->lora_dropout < 1.0f))
		return sk_fail(_("training: LoRA dropout %g is not in [0, 1)"), (double)o->lora_dropout);
	if (!isfinite(o->grad_scale))
		return sk_fail("%s", _("training: the gradient scale is not finite"));
	if (o->want_grad && adapter && !adapter->grad_a)
		return sk_fail("%s", _("training: the adapter has no gradient buffers (not trainable)"));
	*N = *n_out = 0;
	int maxpos = m->cfg.max_position_embeddings;
	for (int s = 0; s < n_seqs; s++) {
		const sk_train_seq *q = &seqs[s];
		if (q->n < 1 || !q->ids)
			return sk_fail(_("training: sequence %d has no tokens"), s);
		if (maxpos > 0 && q->n > maxpos)
			return sk_fail(_("training: sequence %d has %d tokens, more than the model's context of %d"), s, q->n,
			               maxpos);
		for (int i = 0; i < q->n; i++) {
			if (q->ids[i] < 0 || q->ids[i] >= m->vocab)
				return sk_fail(_("token id %d is out of range (vocabulary of %d)"), (int)q->ids[i], (int)m->vocab);
			if (i > 0 && q->target && q->target[i])
				(*n_out)++;
		}
		*N += q->n;
		if (*N > INT32_MAX)
			return sk_fail("%s", _("training: too many tokens in one micro-batch"));
	}
	return 0;
}

int sk_model_loss_grad(sk_model *m, sk_lora *adapter, const sk_train_seq *seqs, int n_seqs,
                       const sk_train_opts *opts, double *loss_sum, int64_t *n_targets)
{
	sk_train_opts def = { 0.0f, 0, 1, 1.0f, 1 };
	const sk_train_opts *o = opts ? opts : &def;
	int64_t N = 0, n_out = 0;
	if (loss_sum)
		*loss_sum = 0;
	if (n_targets)
		*n_targets = 0;
	if (!m || check_seqs(m, adapter, seqs, n_seqs, o, &N, &n_out) != 0)
		return -1;
	const sk_config *c = &m->cfg;
	tws w;
	memset(&w, 0, sizeof w);
	w.ops = sk_train_ops(m->be);
	if (!w.ops)
		return -1;
	w.ad = adapter;
	w.dropout = o->lora_dropout;
	w.seed = o->dropout_seed;
	w.N = N;
	w.n_out = n_out;
	w.n_seqs = n_seqs;
	int want_grad = o->want_grad && adapter && n_out > 0;
	int n_rec = want_grad && !o->grad_ckpt ? c->num_layers : 1;

	sk_arena meas;
	sk_arena_init_measure(&meas);
	tws tmp = w;
	plan(&meas, m, N, n_out, n_seqs, n_rec, want_grad, &tmp);
	size_t need = meas.peak + 64;
	if (m->ws.cap < need && sk_arena_reserve(&m->ws, need) != 0)
		return -1;
	sk_arena_reset(&m->ws);
	plan(&m->ws, m, N, n_out, n_seqs, n_rec, want_grad, &w);

	int64_t r = 0, o_i = 0;
	for (int s = 0; s < n_seqs; s++) {
		const sk_train_seq *q = &seqs[s];
		w.seq_row[s] = r;
		for (int i = 0; i < q->n; i++, r++) {
			w.ids[r] = q->ids[i];
			w.pos[r] = i;
			if (i > 0 && q->target && q->target[i]) {
				w.sel[o_i] = r - 1; /* the logits at i - 1 predict token i */
				w.labels[o_i++] = q->ids[i];
			}
		}
	}
	w.seq_row[n_seqs] = r;

	if (embed_inputs(m, &w) != 0)
		return -1;
	for (int l = 0; l < c->num_layers; l++)
		if (fwd_layer(m, &w, l, &w.rec[n_rec > 1 ? l : 0]) != 0)
			return -1;
	double loss = 0;
	if (n_out > 0) {
		if (head_fwd(m, &w) != 0)
			return -1;
		float *dhn = want_grad ? w.dhn : NULL;
		if (sk_loss_head(m, w.ops, w.hn, w.labels, n_out, o->grad_scale, dhn, &loss, &w.lw) != 0)
			return -1;
	}
	if (want_grad) {
		int64_t kvd = (int64_t)c->num_kv_heads * c->head_dim;
		memset(w.dk, 0, (size_t)(m->n_kv_layers * N * kvd) * sizeof(float));
		memset(w.dv, 0, (size_t)(m->n_kv_layers * N * kvd) * sizeof(float));
		if (head_bwd(m, &w) != 0)
			return -1;
		for (int l = c->num_layers - 1; l >= 0; l--) {
			layer_rec *a = &w.rec[n_rec > 1 ? l : 0];
			if (n_rec == 1 && fwd_layer(m, &w, l, a) != 0) /* recompute from the kept input */
				return -1;
			int rc = c->arch == SK_ARCH_GEMMA3N ? bwd_gemma3n(m, &w, l, a, w.xs[l], w.dx, w.dxp)
			                                    : bwd_gemma3(m, &w, l, a, w.xs[l], w.dx, w.dxp);
			if (rc != 0)
				return -1;
			float *t = w.dx;
			w.dx = w.dxp;
			w.dxp = t;
		}
	}
	if (loss_sum)
		*loss_sum = loss;
	if (n_targets)
		*n_targets = n_out;
	return 0;
}
