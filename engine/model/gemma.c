/* The Gemma 3n / Gemma 3 text decoder, written once over the backend ops
 * table (gemma3n-architecture.md §3, §8). A batched forward flattens every
 * item's new tokens into N rows: matrices run over all rows together,
 * attention runs per item against that item's cache. New K/V are kept in
 * the workspace and written to the caches only at the end, so KV-shared
 * layers read the same values as their producers and a failed call leaves
 * the caches as they were. */
#include "engine/model/model_internal.h"

#include <math.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"

#define OPS (m->be->ops)

/* Activations of one forward, carved from the model's arena. */
typedef struct {
	int32_t *ids, *ple_ids, *pos;
	uint8_t *mask;          /* LoRA on, per row (NULL when no item has it on) */
	int64_t *item_row;      /* first row of each item */
	float *x, *p, *c;       /* AltUp streams [A][N][H] (Gemma 3: x only) */
	float *pli;             /* [N][L·P] */
	float *nrm, *lam, *lr, *q, *att, *o, *h1, *mm, *g, *u, *f, *y, *tmp;
	float *modal;           /* [N][A] */
	float *pg;              /* [N][P] */
	float *k_new, *v_new;   /* per KV-owning layer: [N][kv_dim] */
	float *hout;            /* [n_out][H] */
} fwd_ws;

static void plan(sk_arena *a, const sk_model *m, int64_t N, int64_t n_out, int n_items, int want_mask, fwd_ws *w)
{
	const sk_config *c = &m->cfg;
	int64_t H = c->hidden_size, qd = (int64_t)c->num_heads * c->head_dim;
	int64_t kvd = (int64_t)c->num_kv_heads * c->head_dim, Fm = 0;
	for (int l = 0; l < c->num_layers; l++)
		if (c->intermediate_size[l] > Fm)
			Fm = c->intermediate_size[l];
	int n3 = c->arch == SK_ARCH_GEMMA3N;
	int64_t A = n3 ? c->altup_num_inputs : 1;
	int64_t LP = n3 ? (int64_t)c->num_layers * c->hidden_size_per_layer_input : 0;
	int64_t wide = H > qd ? H : qd;
	memset(w, 0, sizeof *w);
	w->ids = sk_arena_alloc(a, (size_t)N * sizeof(int32_t));
	w->ple_ids = sk_arena_alloc(a, (size_t)N * sizeof(int32_t));
	w->pos = sk_arena_alloc(a, (size_t)N * sizeof(int32_t));
	w->mask = want_mask ? sk_arena_alloc(a, (size_t)N) : NULL;
	w->item_row = sk_arena_alloc(a, (size_t)(n_items + 1) * sizeof(int64_t));
	w->x = sk_arena_floats(a, (size_t)(A * N * H));
	if (n3) {
		w->p = sk_arena_floats(a, (size_t)(A * N * H));
		w->c = sk_arena_floats(a, (size_t)(A * N * H));
		w->pli = sk_arena_floats(a, (size_t)(N * LP));
		w->lam = sk_arena_floats(a, (size_t)(N * H));
		w->lr = sk_arena_floats(a, (size_t)(N * c->laurel_rank));
		w->modal = sk_arena_floats(a, (size_t)(N * A));
		w->pg = sk_arena_floats(a, (size_t)(N * c->hidden_size_per_layer_input));
	}
	w->nrm = sk_arena_floats(a, (size_t)(N * H));
	w->q = sk_arena_floats(a, (size_t)(N * qd));
	w->att = sk_arena_floats(a, (size_t)(N * qd));
	w->o = sk_arena_floats(a, (size_t)(N * H));
	w->h1 = sk_arena_floats(a, (size_t)(N * H));
	w->mm = sk_arena_floats(a, (size_t)(N * H));
	w->g = sk_arena_floats(a, (size_t)(N * Fm));
	w->u = sk_arena_floats(a, (size_t)(N * Fm));
	w->f = sk_arena_floats(a, (size_t)(N * H));
	w->y = sk_arena_floats(a, (size_t)(N * H));
	w->tmp = sk_arena_floats(a, (size_t)(N * (LP > wide ? LP : wide)));
	w->k_new = sk_arena_floats(a, (size_t)(m->n_kv_layers * N * kvd));
	w->v_new = sk_arena_floats(a, (size_t)(m->n_kv_layers * N * kvd));
	w->hout = sk_arena_floats(a, (size_t)(n_out * H));
}

/* A linear with the adapter's pair for (layer, module) when one is attached. */
static int lin(sk_model *m, const fwd_ws *w, const sk_tensor *t, int layer, int mod, const float *x, int64_t n, float *y)
{
	const sk_lora_pair *lp = NULL;
	if (m->lora && w->mask && mod >= 0)
		lp = sk_lora_get(m->lora, layer, (sk_lora_module)mod);
	return OPS->linear(m->be, t, x, n, y, lp, lp ? w->mask : NULL);
}

/* Attention block of layer l on the normed input n [N][H]; result in w->o. */
static int attention(sk_model *m, const sk_kv_cache *kv, const sk_batch_item *items, int n_items, fwd_ws *w,
                     int64_t N, int l, const float *n)
{
	const sk_config *c = &m->cfg;
	const sk_layer *L = &m->layers[l];
	int hd = c->head_dim, nh = c->num_heads, nkv = c->num_kv_heads;
	int64_t kvd = (int64_t)nkv * hd;
	float eps = c->rms_norm_eps;
	float theta = L->sliding ? c->rope_theta_local : c->rope_theta_global;
	sk_rope_scaling rs = L->sliding ? c->rope_scaling_local : c->rope_scaling_global;
	float factor = rs == SK_ROPE_LINEAR ? (L->sliding ? c->rope_factor_local : c->rope_factor_global) : 1.0f;
	if (!(factor > 0))
		factor = 1.0f;

	if (lin(m, w, &L->q, l, SK_LORA_Q, n, N, w->q) != 0)
		return -1;
	OPS->rmsnorm(m->be, w->q, N * nh, hd, L->q_norm, eps, w->q);
	OPS->rope(m->be, w->q, N, nh, hd, w->pos, theta, factor);
	const sk_layer *S = &m->layers[L->kv_src];
	float *kn = w->k_new + (int64_t)S->kv_slot * N * kvd, *vn = w->v_new + (int64_t)S->kv_slot * N * kvd;
	if (L->kv_slot >= 0) {
		if (lin(m, w, &L->k, l, SK_LORA_K, n, N, kn) != 0 || lin(m, w, &L->v, l, SK_LORA_V, n, N, vn) != 0)
			return -1;
		OPS->rmsnorm(m->be, kn, N * nkv, hd, L->k_norm, eps, kn);
		OPS->rope(m->be, kn, N, nkv, hd, w->pos, theta, factor);
		if (c->arch == SK_ARCH_GEMMA3N) /* Gemma 3n's weight-less v_norm */
			OPS->rmsnorm(m->be, vn, N * nkv, hd, NULL, eps, vn);
	}
	int window = L->sliding ? c->sliding_window : 0;
	for (int it = 0; it < n_items; it++) {
		int64_t r0 = w->item_row[it], rn = items[it].n;
		int s = items[it].seq;
		size_t ci = (size_t)s * kv->n_layers + (size_t)S->kv_slot;
		int64_t cap = kv->cap[S->kv_slot];
		int64_t hi = kv->pos[s], lo = hi > cap ? hi - cap : 0;
		sk_attn_kv a = { kv->k[ci], kv->v[ci], cap, lo, hi, kn + r0 * kvd, vn + r0 * kvd };
		if (OPS->attention(m->be, w->q + r0 * nh * hd, rn, &a, nh, nkv, hd, window, sk_config_attn_scale(c),
		                   c->attn_logit_softcap, w->att + r0 * nh * hd) != 0)
			return -1;
	}
	return lin(m, w, &L->o, l, SK_LORA_O, w->att, N, w->o);
}

/* Gated MLP on m_in [N][H]; result in w->f. */
static int mlp(sk_model *m, fwd_ws *w, int64_t N, int l, const float *m_in)
{
	const sk_layer *L = &m->layers[l];
	if (lin(m, w, &L->gate, l, SK_LORA_GATE, m_in, N, w->g) != 0 || lin(m, w, &L->up, l, SK_LORA_UP, m_in, N, w->u) != 0)
		return -1;
	OPS->gelu_mul(m->be, w->g, w->u, N, L->ffn, L->sparsity_z);
	return lin(m, w, &L->down, l, SK_LORA_DOWN, w->g, N, w->f);
}

static int layer_gemma3(sk_model *m, const sk_kv_cache *kv, const sk_batch_item *items, int n_items, fwd_ws *w,
                        int64_t N, int l)
{
	const sk_config *c = &m->cfg;
	const sk_layer *L = &m->layers[l];
	int64_t H = c->hidden_size;
	float eps = c->rms_norm_eps;
	OPS->rmsnorm(m->be, w->x, N, H, L->attn_norm, eps, w->nrm);
	if (attention(m, kv, items, n_items, w, N, l, w->nrm) != 0)
		return -1;
	OPS->rmsnorm(m->be, w->o, N, H, L->post_attn_norm, eps, w->o);
	OPS->add(m->be, w->x, w->o, N * H, 1.0f, w->x);
	OPS->rmsnorm(m->be, w->x, N, H, L->pre_ffn_norm, eps, w->mm);
	if (mlp(m, w, N, l, w->mm) != 0)
		return -1;
	OPS->rmsnorm(m->be, w->f, N, H, L->post_ffn_norm, eps, w->f);
	OPS->add(m->be, w->x, w->f, N * H, 1.0f, w->x);
	return 0;
}

static int layer_gemma3n(sk_model *m, const sk_kv_cache *kv, const sk_batch_item *items, int n_items, fwd_ws *w,
                         int64_t N, int l)
{
	const sk_config *c = &m->cfg;
	const sk_layer *L = &m->layers[l];
	int64_t H = c->hidden_size, P = c->hidden_size_per_layer_input, LP = (int64_t)c->num_layers * P;
	int A = c->altup_num_inputs, act = c->altup_active_idx;
	float eps = c->rms_norm_eps;
	const float rsqrt2 = (float)(1.0 / sqrt(2.0));

	/* AltUp predict; the active prediction goes through the block */
	OPS->altup_router(m->be, w->x + act * N * H, N, H, L->router_norm, eps, L->router, A, w->modal);
	OPS->altup_predict(m->be, w->x, N, H, A, L->pred_coef, w->modal, w->p);
	const float *a = w->p + act * N * H;
	OPS->rmsnorm(m->be, a, N, H, L->attn_norm, eps, w->nrm);

	/* LAuReL: n + RMS(W_r W_l n) */
	if (lin(m, w, &L->laurel_l, l, -1, w->nrm, N, w->lr) != 0 || lin(m, w, &L->laurel_r, l, -1, w->lr, N, w->lam) != 0)
		return -1;
	OPS->rmsnorm(m->be, w->lam, N, H, L->laurel_norm, eps, w->lam);
	OPS->add(m->be, w->nrm, w->lam, N * H, 1.0f, w->lam);

	if (attention(m, kv, items, n_items, w, N, l, w->nrm) != 0)
		return -1;
	OPS->rmsnorm(m->be, w->o, N, H, L->post_attn_norm, eps, w->o);
	OPS->add(m->be, a, w->o, N * H, 1.0f, w->h1);
	OPS->add(m->be, w->h1, w->lam, N * H, rsqrt2, w->h1);

	OPS->rmsnorm(m->be, w->h1, N, H, L->pre_ffn_norm, eps, w->mm);
	if (mlp(m, w, N, l, w->mm) != 0)
		return -1;
	OPS->rmsnorm(m->be, w->f, N, H, L->post_ffn_norm, eps, w->f);
	OPS->add(m->be, w->h1, w->f, N * H, 1.0f, w->y);

	/* AltUp correct */
	OPS->altup_router(m->be, w->y, N, H, L->router_norm, eps, L->router, A, w->modal);
	OPS->altup_correct(m->be, w->p, w->y, N, H, A, act, L->corr_coef, w->modal, w->c);

	/* per-layer input: RMS(W_pp (gelu(W_pg (c_act ⊙ γ)) ⊙ pli_l)) added to the other streams */
	float *ca = w->c + act * N * H;
	if (c->altup_correct_scale)
		OPS->mul_rows(m->be, ca, L->altup_scale, N, H, w->mm);
	else
		memcpy(w->mm, ca, (size_t)(N * H) * sizeof(float));
	if (lin(m, w, &L->ple_gate, l, -1, w->mm, N, w->pg) != 0)
		return -1;
	OPS->gelu_mul(m->be, w->pg, NULL, N, P, 0.0f);
	for (int64_t r = 0; r < N; r++) /* the layer's slice of the per-layer inputs */
		OPS->mul_rows(m->be, w->pg + r * P, w->pli + r * LP + (int64_t)l * P, 1, P, w->pg + r * P);
	if (lin(m, w, &L->ple_proj, l, -1, w->pg, N, w->f) != 0)
		return -1;
	OPS->rmsnorm(m->be, w->f, N, H, L->ple_post_norm, eps, w->f);
	for (int k = 0; k < A; k++)
		if (k != act)
			OPS->add(m->be, w->c + k * N * H, w->f, N * H, 1.0f, w->c + k * N * H);
	/* the corrected streams are the next layer's input */
	float *t = w->x;
	w->x = w->c;
	w->c = t;
	return 0;
}

/* Embedding, PLE inputs and the AltUp streams (Gemma 3n §3.2–3.4). */
static int embed_inputs(sk_model *m, fwd_ws *w, int64_t N)
{
	const sk_config *c = &m->cfg;
	int64_t H = c->hidden_size;
	if (OPS->embed(m->be, &m->embed, w->ids, N, m->embed_scale, w->x) != 0)
		return -1;
	if (c->arch != SK_ARCH_GEMMA3N)
		return 0;
	int64_t P = c->hidden_size_per_layer_input, LP = (int64_t)c->num_layers * P;
	int A = c->altup_num_inputs;
	/* ids outside the PLE table use row 0, as transformers does */
	int64_t prow = sk_tensor_rows(&m->ple_embed);
	for (int64_t i = 0; i < N; i++)
		w->ple_ids[i] = w->ids[i] < c->vocab_size_per_layer_input && w->ids[i] < prow ? w->ids[i] : 0;
	if (OPS->embed(m->be, &m->ple_embed, w->ple_ids, N, m->ple_scale, w->tmp) != 0)
		return -1;
	if (lin(m, w, &m->ple_model_proj, -1, -1, w->x, N, w->pli) != 0)
		return -1;
	const float pscale = (float)pow((double)H, -0.5); /* HF: hidden_size**-0.5 as an fp32 buffer */
	for (int64_t i = 0; i < N * LP; i++)
		w->pli[i] *= pscale;
	OPS->rmsnorm(m->be, w->pli, N * c->num_layers, P, m->ple_proj_norm, c->rms_norm_eps, w->pli);
	OPS->add(m->be, w->pli, w->tmp, N * LP, (float)(1.0 / sqrt(2.0)), w->pli);
	/* streams 1..A-1: projections of the embedding at its magnitude */
	for (int k = 1; k < A; k++) {
		float *xk = w->x + k * N * H;
		if (lin(m, w, &m->altup_proj[k - 1], -1, -1, w->x, N, xk) != 0)
			return -1;
		OPS->rescale_rms(m->be, xk, w->x, N, H);
	}
	return 0;
}

/* Final hidden state of the rows in sel (n_out of them) into w->hout (§3.8). */
static int final_hidden(sk_model *m, fwd_ws *w, int64_t N, const int64_t *sel, int64_t n_out)
{
	const sk_config *c = &m->cfg;
	int64_t H = c->hidden_size;
	if (c->arch == SK_ARCH_GEMMA3N) {
		int A = c->altup_num_inputs, act = c->altup_active_idx;
		/* gather every stream's selected rows into p ([A][n_out][H]) */
		for (int k = 0; k < A; k++)
			for (int64_t i = 0; i < n_out; i++)
				memcpy(w->p + (k * n_out + i) * H, w->x + (k * N + sel[i]) * H, (size_t)H * sizeof(float));
		const float *x0 = w->p + act * n_out * H;
		memcpy(w->hout, x0, (size_t)(n_out * H) * sizeof(float));
		int j = 0;
		for (int k = 0; k < A; k++) {
			if (k == act)
				continue;
			float *v = w->c;
			if (lin(m, w, &m->altup_unembed[j++], -1, -1, w->p + k * n_out * H, n_out, v) != 0)
				return -1;
			OPS->rescale_rms(m->be, v, x0, n_out, H);
			OPS->add(m->be, w->hout, v, n_out * H, 1.0f, w->hout);
		}
		for (int64_t i = 0; i < n_out * H; i++)
			w->hout[i] /= (float)A;
	} else {
		for (int64_t i = 0; i < n_out; i++)
			memcpy(w->hout + i * H, w->x + sel[i] * H, (size_t)H * sizeof(float));
	}
	OPS->rmsnorm(m->be, w->hout, n_out, H, m->final_norm, c->rms_norm_eps, w->hout);
	return 0;
}

static int check_items(const sk_model *m, const sk_kv_cache *kv, const sk_batch_item *items, int n_items,
                       int64_t *N, int64_t *n_out, int *want_mask)
{
	if (!kv)
		return sk_fail("%s", _("forward: no KV cache given"));
	if (kv->m != m)
		return sk_fail("%s", _("forward: the KV cache belongs to another model"));
	if (n_items < 1 || !items)
		return sk_fail("%s", _("forward: no sequences given"));
	*N = *n_out = 0;
	*want_mask = 0;
	for (int i = 0; i < n_items; i++) {
		const sk_batch_item *it = &items[i];
		if (it->seq < 0 || it->seq >= kv->n_seqs)
			return sk_fail(_("forward: sequence slot %d is out of range (the cache has %d)"), it->seq, kv->n_seqs);
		for (int j = 0; j < i; j++)
			if (items[j].seq == it->seq)
				return sk_fail(_("forward: sequence slot %d appears twice in one batch"), it->seq);
		if (it->n < 1 || !it->ids)
			return sk_fail(_("forward: sequence slot %d has no tokens"), it->seq);
		if ((int64_t)kv->pos[it->seq] + it->n > kv->max_ctx)
			return sk_fail(_("context of %lld tokens exceeds the KV cache's %d"),
			               (long long)kv->pos[it->seq] + it->n, kv->max_ctx);
		for (int k = 0; k < it->n; k++)
			if (it->ids[k] < 0 || it->ids[k] >= m->vocab)
				return sk_fail(_("token id %d is out of range (vocabulary of %d)"), (int)it->ids[k], (int)m->vocab);
		*N += it->n;
		*n_out += it->all_logits ? it->n : 1;
		if (it->adapter_on && m->lora)
			*want_mask = 1;
	}
	return 0;
}

/* Appends the new K/V of every item to its cache (ring: only the last cap). */
static void commit_kv(const sk_model *m, sk_kv_cache *kv, const sk_batch_item *items, int n_items, const fwd_ws *w,
                      int64_t N)
{
	int64_t kvd = kv->kv_dim;
	for (int it = 0; it < n_items; it++) {
		int s = items[it].seq;
		int64_t r0 = w->item_row[it], n = items[it].n, p0 = kv->pos[s];
		for (int j = 0; j < kv->n_layers; j++) {
			int64_t cap = kv->cap[j];
			size_t ci = (size_t)s * kv->n_layers + (size_t)j;
			int64_t first = n > cap ? n - cap : 0;
			for (int64_t i = first; i < n; i++) {
				int64_t slot = (p0 + i) % cap;
				memcpy(kv->k[ci] + slot * kvd, w->k_new + ((int64_t)j * N + r0 + i) * kvd, (size_t)kvd * sizeof(float));
				memcpy(kv->v[ci] + slot * kvd, w->v_new + ((int64_t)j * N + r0 + i) * kvd, (size_t)kvd * sizeof(float));
			}
		}
		kv->pos[s] = (int)(p0 + n);
	}
	(void)m;
}

int sk_model_forward(sk_model *m, sk_kv_cache *kv, const sk_batch_item *items, int n_items, float *logits)
{
	int64_t N = 0, n_out = 0;
	int want_mask = 0;
	if (check_items(m, kv, items, n_items, &N, &n_out, &want_mask) != 0)
		return -1;
	const sk_config *c = &m->cfg;
	fwd_ws w;
	sk_arena meas;
	sk_arena_init_measure(&meas);
	plan(&meas, m, N, n_out, n_items, want_mask, &w);
	/* room for the selection list too */
	size_t need = meas.peak + (size_t)n_out * sizeof(int64_t) + 64;
	if (m->ws.cap < need && sk_arena_reserve(&m->ws, need + need / 4) != 0)
		return -1;
	sk_arena_reset(&m->ws);
	plan(&m->ws, m, N, n_out, n_items, want_mask, &w);
	int64_t *sel = sk_arena_alloc(&m->ws, (size_t)n_out * sizeof(int64_t));

	int64_t r = 0, o = 0;
	for (int it = 0; it < n_items; it++) {
		const sk_batch_item *b = &items[it];
		w.item_row[it] = r;
		for (int k = 0; k < b->n; k++, r++) {
			w.ids[r] = b->ids[k];
			w.pos[r] = kv->pos[b->seq] + k;
			if (w.mask)
				w.mask[r] = (uint8_t)(b->adapter_on != 0);
			if (b->all_logits || k == b->n - 1)
				sel[o++] = r;
		}
	}
	w.item_row[n_items] = r;

	if (embed_inputs(m, &w, N) != 0)
		return -1;
	for (int l = 0; l < c->num_layers; l++) {
		int rc = c->arch == SK_ARCH_GEMMA3N ? layer_gemma3n(m, kv, items, n_items, &w, N, l)
		                                    : layer_gemma3(m, kv, items, n_items, &w, N, l);
		if (rc != 0)
			return -1;
	}
	if (final_hidden(m, &w, N, sel, n_out) != 0)
		return -1;
	/* tied LM head: the unscaled embedding matrix */
	if (OPS->linear(m->be, &m->embed, w.hout, n_out, logits, NULL, NULL) != 0)
		return -1;
	if (c->final_logit_softcap > 0)
		OPS->softcap(m->be, logits, n_out * (int64_t)m->vocab, c->final_logit_softcap);
	commit_kv(m, kv, items, n_items, &w, N);
	return 0;
}
