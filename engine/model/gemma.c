/* The Gemma 3n / Gemma 3 text decoder, written once over the backend ops
 * table (gemma3n-architecture.md §3, §8): the embedding and per-layer
 * inputs, one decoder layer, and the final hidden state. Inference and
 * training run these same functions (gemma_forward.h); matrices run over
 * all N rows together, attention per sequence against its cache (or
 * against its own rows only, when there is no cache). */
#include "engine/model/gemma_forward.h"

#include <math.h>

#define OPS (f->ops)
#define BE (f->m->be)

/* y = x, skipped when the two are one buffer (inference aliases them). */
static void copy(const sk_fwd *f, const float *x, int64_t n, float *y)
{
	if (x != y)
		OPS->scale(BE, x, n, 1.0f, y);
}

/* out = gelu_mul(g), g kept: in one pass where the backend has the op */
static void gelu_mul_into(const sk_fwd *f, const float *g, const float *u, int64_t u_stride, int64_t rows,
                          int64_t dim, float z, float *out)
{
	if (OPS->gelu_mul_to) {
		OPS->gelu_mul_to(BE, g, u, u_stride, rows, dim, z, out);
		return;
	}
	copy(f, g, rows * dim, out);
	OPS->gelu_mul(BE, out, u, u_stride, rows, dim, z);
}

uint64_t sk_gemma_lora_seed(uint64_t seed, int layer, int mod)
{
	return seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(layer * SK_LORA_NMOD + mod + 1));
}

/* y = x Wᵀ with the LoRA pair of (layer, mod) when one applies (mod < 0:
 * a weight LoRA never targets). */
static int lin(const sk_fwd *f, const sk_tensor *t, int layer, int mod, const float *x, int64_t n, float *y)
{
	if (f->train_lora) {
		const sk_lora_pair *lp = mod >= 0 ? sk_lora_get(f->train_lora, layer, (sk_lora_module)mod) : NULL;
		uint64_t seed = lp ? sk_gemma_lora_seed(f->dropout_seed, layer, mod) : 0;
		if (lp && OPS->linear_lora_fwd)
			return OPS->linear_lora_fwd(BE, t, x, n, y, lp, f->dropout, seed);
		if (OPS->linear(BE, t, x, n, y, NULL, NULL) != 0)
			return -1;
		return lp ? OPS->lora_fwd(BE, lp, x, n, f->dropout, seed, y) : 0;
	}
	const sk_lora_pair *lp = NULL;
	if (f->m->lora && f->lora_rows && mod >= 0)
		lp = sk_lora_get(f->m->lora, layer, (sk_lora_module)mod);
	return OPS->linear(BE, t, x, n, y, lp, lp ? f->lora_rows : NULL);
}

/* Two linears of the same input (k and v, gate and up): one call when the
 * backend takes them together. */
static int lin2(const sk_fwd *f, const sk_tensor *t1, int mod1, const sk_tensor *t2, int mod2, int layer,
                const float *x, int64_t n, float *y1, float *y2)
{
	if (f->train_lora || !OPS->linear2)
		return lin(f, t1, layer, mod1, x, n, y1) != 0 ? -1 : lin(f, t2, layer, mod2, x, n, y2);
	const sk_lora_pair *l1 = NULL, *l2 = NULL;
	if (f->m->lora && f->lora_rows) {
		l1 = sk_lora_get(f->m->lora, layer, (sk_lora_module)mod1);
		l2 = sk_lora_get(f->m->lora, layer, (sk_lora_module)mod2);
	}
	return OPS->linear2(BE, t1, t2, x, n, y1, y2, l1, l2, l1 || l2 ? f->lora_rows : NULL);
}

sk_rope_cfg sk_gemma_layer_rope(const sk_config *c, const sk_layer *L)
{
	sk_rope_cfg r;
	r.theta = L->sliding ? c->rope_theta_local : c->rope_theta_global;
	sk_rope_scaling rs = L->sliding ? c->rope_scaling_local : c->rope_scaling_global;
	r.factor = rs == SK_ROPE_LINEAR ? (L->sliding ? c->rope_factor_local : c->rope_factor_global) : 1.0f;
	if (!(r.factor > 0))
		r.factor = 1.0f;
	r.window = L->sliding ? c->sliding_window : 0;
	return r;
}

/* Attention block of layer l on the normed input a->nrm; o_proj's output in a->o. */
static int attention(const sk_fwd *f, int l, sk_layer_acts *a)
{
	const sk_model *m = f->m;
	const sk_config *c = &m->cfg;
	const sk_layer *L = &m->layers[l];
	int64_t N = f->N;
	int hd = c->head_dim, nh = c->num_heads, nkv = c->num_kv_heads;
	int64_t kvd = (int64_t)nkv * hd, qd = (int64_t)nh * hd;
	float eps = c->rms_norm_eps;
	sk_rope_cfg rc = sk_gemma_layer_rope(c, L);

	if (lin(f, &L->q, l, SK_LORA_Q, a->nrm, N, a->q0) != 0)
		return -1;
	/* KV-shared layers read the K/V their producer stored in this pass */
	const sk_layer *S = &m->layers[L->kv_src];
	float *kn = f->k_new + (int64_t)S->kv_slot * N * kvd, *vn = f->v_new + (int64_t)S->kv_slot * N * kvd;
	if (L->kv_slot < 0) {
		OPS->norm_rope(BE, a->q0, N, nh, hd, L->q_norm, eps, f->pos, rc.theta, rc.factor, a->q);
	} else {
		float *k0 = a->k0 ? a->k0 : kn, *v0 = a->v0 ? a->v0 : vn;
		if (lin2(f, &L->k, SK_LORA_K, &L->v, SK_LORA_V, l, a->nrm, N, k0, v0) != 0)
			return -1;
		if (c->arch == SK_ARCH_GEMMA3N && OPS->norm_rope_qkv) {
			sk_qkv_norm qa = { a->q0, L->q_norm, a->q, nh, nkv, k0, L->k_norm, v0, kn, vn };
			OPS->norm_rope_qkv(BE, N, hd, eps, f->pos, rc.theta, rc.factor, &qa);
		} else {
			OPS->norm_rope(BE, a->q0, N, nh, hd, L->q_norm, eps, f->pos, rc.theta, rc.factor, a->q);
			OPS->norm_rope(BE, k0, N, nkv, hd, L->k_norm, eps, f->pos, rc.theta, rc.factor, kn);
			if (c->arch == SK_ARCH_GEMMA3N) /* Gemma 3n's weight-less v_norm */
				OPS->rmsnorm(BE, v0, N * nkv, hd, NULL, eps, vn);
			else
				copy(f, v0, N * kvd, vn);
		}
	}
	if (f->kept & SK_KEEP_ATTN) /* att and o kept by the first forward */
		return 0;
	/* a training pass: its sequences in one call where the backend has one */
	if (!f->kv && f->spans && OPS->attention_spans) {
		if (OPS->attention_spans(BE, a->q, kn, vn, f->pos, f->spans, f->n_items, nh, nkv, hd, rc.window,
		                         sk_config_attn_scale(c), c->attn_logit_softcap, a->att) != 0)
			return -1;
		return lin(f, &L->o, l, SK_LORA_O, a->att, N, a->o);
	}
	for (int it = 0; it < f->n_items; it++) {
		const sk_fwd_item *b = &f->items[it];
		sk_attn_kv kv = { NULL, NULL, 1, 0, 0, kn + b->row0 * kvd, vn + b->row0 * kvd, f->pos + b->row0 };
		if (f->kv) {
			const sk_kv_cache *C = f->kv;
			size_t ci = (size_t)b->seq * C->n_layers + (size_t)S->kv_slot;
			kv.k_past = C->k[ci];
			kv.v_past = C->v[ci];
			kv.cap = C->cap[S->kv_slot];
			kv.past_hi = C->pos[b->seq];
			kv.past_lo = kv.past_hi > kv.cap ? kv.past_hi - kv.cap : 0;
		}
		if (OPS->attention(BE, a->q + b->row0 * qd, b->n, &kv, nh, nkv, hd, rc.window, sk_config_attn_scale(c),
		                   c->attn_logit_softcap, a->att + b->row0 * qd) != 0)
			return -1;
	}
	return lin(f, &L->o, l, SK_LORA_O, a->att, N, a->o);
}

/* Gated MLP on a->mm; down's output in a->f. */
static int mlp(const sk_fwd *f, int l, sk_layer_acts *a)
{
	const sk_layer *L = &f->m->layers[l];
	int64_t N = f->N;
	a->mlp_saved = 0;
	/* the backend may fuse the block: in a first forward, whose g0, u and z nothing reads again,
	 * and in the forward computed again for the backward, down's output kept, saving g0, u and z
	 * in its own form for its own backward (gated_mlp_bwd) */
	int fuse_fwd = f->transient && !(f->kept & SK_KEEP_DOWN);
	int fuse_save = !f->transient && (f->kept & SK_KEEP_DOWN) && OPS->gated_mlp_bwd;
	if (f->train_lora && OPS->gated_mlp && (fuse_fwd || fuse_save)) {
		sk_gated_mlp g = { { &L->gate, &L->up, &L->down },
			           { sk_lora_get(f->train_lora, l, SK_LORA_GATE), sk_lora_get(f->train_lora, l, SK_LORA_UP),
			             sk_lora_get(f->train_lora, l, SK_LORA_DOWN) },
			           a->mm,
			           N,
			           f->dropout,
			           L->sparsity_z,
			           fuse_fwd ? a->f : NULL,
			           a->g0,
			           a->u,
			           a->z };
		int rc = g.l[0] && g.l[1] && g.l[2] ? OPS->gated_mlp(BE, &g) : 0;
		if (rc < 0)
			return -1;
		if (rc > 0) {
			a->mlp_saved = fuse_save;
			return 0;
		}
	}
	if (lin2(f, &L->gate, SK_LORA_GATE, &L->up, SK_LORA_UP, l, a->mm, N, a->g0, a->u) != 0)
		return -1;
	gelu_mul_into(f, a->g0, a->u, L->ffn, N, L->ffn, L->sparsity_z, a->z);
	if (f->kept & SK_KEEP_DOWN) /* f kept by the first forward */
		return 0;
	return lin(f, &L->down, l, SK_LORA_DOWN, a->z, N, a->f);
}

static int layer_gemma3(const sk_fwd *f, int l, sk_layer_acts *a, const float *x, float *out)
{
	const sk_config *c = &f->m->cfg;
	const sk_layer *L = &f->m->layers[l];
	int64_t N = f->N, H = c->hidden_size;
	float eps = c->rms_norm_eps;
	OPS->rmsnorm(BE, x, N, H, L->attn_norm, eps, a->nrm);
	if (attention(f, l, a) != 0)
		return -1;
	if (OPS->norm_add_norm) {
		sk_norm_add_norm na = { NULL, NULL, NULL, NULL, a->o, L->post_attn_norm, x, 1.0f, a->h1, L->pre_ffn_norm,
			                a->mm };
		OPS->norm_add_norm(BE, N, H, eps, &na);
	} else {
		OPS->norm_add(BE, a->o, N, H, L->post_attn_norm, eps, x, NULL, 1.0f, a->h1);
		OPS->rmsnorm(BE, a->h1, N, H, L->pre_ffn_norm, eps, a->mm);
	}
	if (mlp(f, l, a) != 0)
		return -1;
	OPS->norm_add(BE, a->f, N, H, L->post_ffn_norm, eps, a->h1, NULL, 1.0f, out);
	return 0;
}

static int layer_gemma3n(const sk_fwd *f, int l, sk_layer_acts *a, const float *x, float *out)
{
	const sk_config *c = &f->m->cfg;
	const sk_layer *L = &f->m->layers[l];
	int64_t N = f->N, H = c->hidden_size, P = c->hidden_size_per_layer_input, LP = (int64_t)c->num_layers * P;
	int A = c->altup_num_inputs, act = c->altup_active_idx;
	float eps = c->rms_norm_eps;
	const float rsqrt2 = (float)(1.0 / sqrt(2.0));

	/* AltUp predict; the active prediction goes through the block */
	const float *pa = a->p + act * N * H;
	if (OPS->altup_router_predict) {
		OPS->altup_router_predict(BE, x, N, H, act, L->router_norm, eps, L->router, A, L->pred_coef, a->modal1,
		                          a->p, L->attn_norm, a->nrm);
	} else {
		OPS->altup_router(BE, x + act * N * H, N, H, L->router_norm, eps, L->router, A, a->modal1);
		OPS->altup_predict(BE, x, N, H, A, L->pred_coef, a->modal1, a->p);
		OPS->rmsnorm(BE, pa, N, H, L->attn_norm, eps, a->nrm);
	}

	/* LAuReL: λ = n + RMS(W_r W_l n) */
	if (!(f->kept & SK_KEEP_LAUREL) &&
	    (lin(f, &L->laurel_l, l, -1, a->nrm, N, a->lr) != 0 || lin(f, &L->laurel_r, l, -1, a->lr, N, a->lam0) != 0))
		return -1;

	/* h1 = ((a + RMS(attn)) + λ) / √2, then RMS(h1) for the MLP */
	if (attention(f, l, a) != 0)
		return -1;
	if (OPS->norm_add_norm) {
		sk_norm_add_norm na = { a->lam0, L->laurel_norm, a->nrm, f->lam, a->o, L->post_attn_norm, pa, rsqrt2,
			                a->h1, L->pre_ffn_norm, a->mm };
		OPS->norm_add_norm(BE, N, H, eps, &na);
	} else {
		OPS->norm_add(BE, a->lam0, N, H, L->laurel_norm, eps, a->nrm, NULL, 1.0f, f->lam);
		OPS->norm_add(BE, a->o, N, H, L->post_attn_norm, eps, pa, f->lam, rsqrt2, a->h1);
		OPS->rmsnorm(BE, a->h1, N, H, L->pre_ffn_norm, eps, a->mm);
	}

	/* y = h1 + RMS(MLP(RMS(h1))), then AltUp correct, and the per-layer
	 * input's operand c_act ⊙ γ */
	if (mlp(f, l, a) != 0)
		return -1;
	const float *ca = out + act * N * H;
	if (OPS->altup_norm_add_correct) {
		sk_altup_tail t = { a->f, L->post_ffn_norm, a->h1, a->y, a->p, L->router_norm, L->router, L->corr_coef,
			            a->modal2, out, c->altup_correct_scale ? L->altup_scale : NULL, a->vin };
		OPS->altup_norm_add_correct(BE, N, H, A, act, eps, &t);
	} else {
		OPS->norm_add(BE, a->f, N, H, L->post_ffn_norm, eps, a->h1, NULL, 1.0f, a->y);
		if (OPS->altup_router_correct) {
			OPS->altup_router_correct(BE, a->p, a->y, N, H, act, L->router_norm, eps, L->router, A,
			                          L->corr_coef, a->modal2, out);
		} else {
			OPS->altup_router(BE, a->y, N, H, L->router_norm, eps, L->router, A, a->modal2);
			OPS->altup_correct(BE, a->p, a->y, N, H, A, act, L->corr_coef, a->modal2, out);
		}
		if (c->altup_correct_scale)
			OPS->mul_rows(BE, ca, L->altup_scale, 0, N, H, a->vin);
		else
			copy(f, ca, N * H, a->vin);
	}

	/* per-layer input: RMS(W_pp (gelu(W_pg (c_act ⊙ γ)) ⊙ pli_l)) added to the other streams;
	 * computed again for the backward with pg0 and psi0 kept, out is not read */
	if (f->kept & SK_KEEP_PLE)
		return 0;
	if (lin(f, &L->ple_gate, l, -1, a->vin, N, a->pg0) != 0)
		return -1;
	/* gelu times the layer's slice of each row's per-layer inputs */
	gelu_mul_into(f, a->pg0, f->pli + (int64_t)l * P, LP, N, P, 0.0f, f->tP);
	if (lin(f, &L->ple_proj, l, -1, f->tP, N, a->psi0) != 0)
		return -1;
	if (OPS->norm_add_streams)
		OPS->norm_add_streams(BE, a->psi0, N, H, L->ple_post_norm, eps, out, A, act);
	else
		for (int k = 0; k < A; k++)
			if (k != act)
				OPS->norm_add(BE, a->psi0, N, H, L->ple_post_norm, eps, out + k * N * H, NULL, 1.0f,
				              out + k * N * H);
	return 0;
}

int sk_gemma_layer(sk_fwd *f, int l, sk_layer_acts *a, const float *x, float *out)
{
	return f->m->cfg.arch == SK_ARCH_GEMMA3N ? layer_gemma3n(f, l, a, x, out) : layer_gemma3(f, l, a, x, out);
}

/* Embedding, per-layer inputs and the AltUp streams (§3.2–3.4). */
int sk_gemma_embed(sk_fwd *f, const int32_t *ids, const int32_t *ple_ids, float *tmp, float *x)
{
	sk_model *m = f->m;
	const sk_config *c = &m->cfg;
	int64_t N = f->N, H = c->hidden_size;
	if (OPS->embed(BE, &m->embed, ids, N, m->embed_scale, x) != 0)
		return -1;
	if (c->arch != SK_ARCH_GEMMA3N)
		return 0;
	int64_t P = c->hidden_size_per_layer_input, LP = (int64_t)c->num_layers * P;
	int A = c->altup_num_inputs;
	if (OPS->embed(BE, &m->ple_embed, ple_ids, N, m->ple_scale, tmp) != 0)
		return -1;
	if (lin(f, &m->ple_model_proj, -1, -1, x, N, f->pli) != 0)
		return -1;
	/* HF: hidden_size**-0.5 as an fp32 buffer; it matters through the norm's eps */
	OPS->scale(BE, f->pli, N * LP, (float)pow((double)H, -0.5), f->pli);
	OPS->rmsnorm(BE, f->pli, N * c->num_layers, P, m->ple_proj_norm, c->rms_norm_eps, f->pli);
	OPS->add(BE, f->pli, tmp, N * LP, (float)(1.0 / sqrt(2.0)), f->pli);
	/* streams 1..A-1: projections of the embedding at its magnitude */
	for (int k = 1; k < A; k++) {
		float *xk = x + k * N * H;
		if (lin(f, &m->altup_proj[k - 1], -1, -1, x, N, xk) != 0)
			return -1;
		OPS->rescale_rms(BE, xk, x, N, H);
	}
	return 0;
}

/* Final hidden state (§3.8): the active stream and the other streams
 * unembedded at its magnitude, averaged, then the final norm. */
int sk_gemma_final_hidden(sk_fwd *f, const float *x, const int64_t *sel, int64_t n, sk_head_acts *h)
{
	sk_model *m = f->m;
	const sk_config *c = &m->cfg;
	int64_t H = c->hidden_size, N = f->N;
	int n3 = c->arch == SK_ARCH_GEMMA3N;
	int A = n3 ? c->altup_num_inputs : 1, act = n3 ? c->altup_active_idx : 0;
	for (int k = 0; k < A; k++)
		OPS->gather_rows(BE, x + k * N * H, H, sel, n, h->hs + k * n * H);
	const float *x0 = h->hs + act * n * H;
	copy(f, x0, n * H, h->hsum);
	int j = 0;
	for (int k = 0; k < A; k++) {
		if (k == act)
			continue;
		float *vk = h->vk + j * h->vk_stride;
		if (lin(f, &m->altup_unembed[j], -1, -1, h->hs + k * n * H, n, vk) != 0)
			return -1;
		copy(f, vk, n * H, h->hn);
		OPS->rescale_rms(BE, h->hn, x0, n, H);
		OPS->add(BE, h->hsum, h->hn, n * H, 1.0f, h->hsum);
		j++;
	}
	if (A > 1)
		OPS->scale(BE, h->hsum, n * H, 1.0f / (float)A, h->hsum);
	OPS->rmsnorm(BE, h->hsum, n, H, m->final_norm, c->rms_norm_eps, h->hn);
	return 0;
}
