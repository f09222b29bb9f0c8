/* Training pass of the Gemma 3n / Gemma 3 decoder (train_grad.h): the
 * forward of gemma.c (the same layer code inference runs) over whole
 * sequences from position 0 with no KV cache, each layer writing its
 * activations into a record the backward reads; the fused loss (loss.c);
 * and the backward to the LoRA factors (gemma3n-architecture.md §6), all
 * over the backend ops table. Frozen weights get no gradients; gradients
 * stop at the embedding and the per-layer inputs, which no LoRA factor
 * feeds.
 *
 * Memory: every activation lives in the model's workspace, sized once per
 * call. With grad_ckpt only each layer's input streams (and the K/V of the
 * KV-owning layers, which KV-shared layers read) are kept; a layer's other
 * activations are recomputed from its input just before its backward.
 * Without it every layer keeps its own record. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/model/gemma_forward.h"
#include "engine/model/lora_internal.h"
#include "engine/train/train_grad.h"
#include "engine/train/train_internal.h"

#define OPS (w->ops)
#define BE (m->be)

/* The index arrays of one pass: filled on the host, read by the backend. */
typedef struct {
	int32_t *ids, *ple_ids, *pos, *labels;
	int64_t *sel;  /* the row whose logits predict each label */
} pass_ints;

typedef struct {
	const sk_backend_ops *ops;
	sk_lora *ad;
	float dropout;
	uint64_t seed;
	int64_t N, n_out;
	int n_seqs;
	pass_ints in;
	sk_fwd_item *seq;           /* host: each sequence's rows */
	sk_row_span *spans;         /* host: the same rows, for the attention ops */
	float **xs;                 /* host: L + 1 stream sets [A][N][H]; layer l reads xs[l] */
	uint16_t *xs16;             /* keep_bf16: the kept sets in bf16 [L][A][N][H]; xs[l] then
	                             * alternate between two fp32 sets, unpacked before a layer is
	                             * computed again */
	float *kst, *vst;           /* K (normed, roped) and V (normed) of the owning layers [n_kv][N][kvd] */
	float *dk, *dv;             /* their gradients, consumers' included */
	sk_layer_acts *rec;         /* host: the records (one per layer, or one reused) */
	int n_rec;
	unsigned keep;              /* with one reused record: the outputs kept per layer (SK_KEEP_*) */
	float *kept;                /* their buffers, [L][kept_floats] */
	int64_t kept_floats;
	float *pli;                 /* [N][L·P] */
	float *t1, *t2, *t3, *tP;   /* [N][wide], [N][wide], [N][max(wide, L·P)], [N][P] */
	float *dx, *dxp, *dp;       /* [A][N][H] */
	float *dy, *dg;             /* [N][H] */
	float *dF1, *dF2;           /* [N][F] */
	float *dq, *datt;           /* [N][qd] */
	float *dkv;                 /* [N][kvd] */
	float *dm;                  /* [N][A] */
	float *dlr;                 /* [N][R] */
	float *aws;                 /* attention backward: [2][N][nh] */
	sk_head_acts h;             /* hs [A][n_out][H], vk [A-1][n_out][H], hsum, hn [n_out][H] */
	float *dhs;                 /* [A][n_out][H] */
	float *dhn, *dh, *dvk;      /* [n_out][H] */
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

static void plan_ints(sk_arena *a, int64_t N, int64_t n_out, pass_ints *o)
{
	int64_t NO = n_out > 0 ? n_out : 1;
	o->ids = sk_arena_alloc(a, (size_t)N * sizeof(int32_t));
	o->ple_ids = sk_arena_alloc(a, (size_t)N * sizeof(int32_t));
	o->pos = sk_arena_alloc(a, (size_t)N * sizeof(int32_t));
	o->labels = sk_arena_alloc(a, (size_t)NO * sizeof(int32_t));
	o->sel = sk_arena_alloc(a, (size_t)NO * sizeof(int64_t));
}

/* The outputs a checkpointed pass keeps per layer (SK_KEEP_*): every one
 * the architecture has, unless the options ask for everything again. */
static unsigned keep_mask(const sk_config *c, const sk_train_opts *o, int n_rec, int want_grad)
{
	if (o->recompute_all || n_rec != 1 || !want_grad)
		return 0;
	return SK_KEEP_DOWN | SK_KEEP_ATTN | (c->arch == SK_ARCH_GEMMA3N ? SK_KEEP_LAUREL | SK_KEEP_PLE : 0);
}

/* Floats layer l's kept outputs take, and their places in the record. */
static int64_t kept_layout(const sk_config *c, unsigned keep, int64_t N, float *b, sk_layer_acts *rec)
{
	sk_layer_acts dummy, *r = rec ? rec : &dummy;
	int64_t H = c->hidden_size, qd = (int64_t)c->num_heads * c->head_dim;
	int64_t P = c->hidden_size_per_layer_input;
	const struct {
		unsigned bit;
		float **at;
		int64_t n;
	} parts[] = {
		{ SK_KEEP_DOWN, &r->f, N * H },      { SK_KEEP_ATTN, &r->o, N * H }, { SK_KEEP_ATTN, &r->att, N * qd },
		{ SK_KEEP_LAUREL, &r->lam0, N * H }, { SK_KEEP_PLE, &r->pg0, N * P }, { SK_KEEP_PLE, &r->psi0, N * H },
	};
	int64_t n = 0;
	for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
		if (!(keep & parts[i].bit))
			continue;
		if (b)
			*parts[i].at = b + n;
		n += (parts[i].n + 63) & ~(int64_t)63; /* each part 256-byte aligned */
	}
	return n;
}

/* Device memory a pass with kept outputs leaves free beyond its workspace,
 * for what it takes as it runs: the largest op's scratch (the gated GELU's
 * backward into bf16 rows, the attention of a pass's sequences), the LoRA
 * intermediates, the weight cache's copies. */
#define KEEP_HEADROOM ((uint64_t)1 << 30)

/* Whether a workspace of need bytes leaves KEEP_HEADROOM free, on a backend
 * that reports its memory (else yes: the allocation will tell), and in
 * *most the largest workspace that does (a grown one takes a quarter more
 * than it needs when it can). The workspace held now counts as free: a
 * larger one replaces it. */
static int room_for(const sk_model *m, size_t need, size_t *most)
{
	uint64_t fr = 0, total = 0;
	*most = SIZE_MAX;
	if (!m->be->ops->mem_info)
		return 1;
	m->be->ops->mem_info(m->be, &fr, &total);
	if (total == 0)
		return 1;
	uint64_t have = fr + (m->ws.base ? m->ws.cap : 0);
	*most = have > KEEP_HEADROOM ? (size_t)(have - KEEP_HEADROOM) : 0;
	return have >= (uint64_t)need + KEEP_HEADROOM;
}

/* The reused record's kept outputs at layer l's buffers. */
static void point_kept(const sk_model *m, tws *w, int l)
{
	if (w->keep)
		kept_layout(&m->cfg, w->keep, w->N, w->kept + l * w->kept_floats, &w->rec[0]);
}

/* Backend memory (a) and, for the host-side arrays of pointers and rows, host memory (ha). */
static void plan(sk_arena *a, sk_arena *ha, const sk_model *m, int64_t N, int64_t n_out, int n_seqs, int n_rec,
                 int want_grad, int keep16, unsigned keep, tws *w)
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
	plan_ints(a, N, n_out, &w->in);
	w->seq = sk_arena_alloc(ha, (size_t)n_seqs * sizeof(sk_fwd_item));
	w->spans = sk_arena_alloc(ha, (size_t)n_seqs * sizeof(sk_row_span));
	w->xs = sk_arena_alloc(ha, (size_t)(L + 1) * sizeof(float *));
	/* the measuring pass gets NULL for every pointer: fill only a real array */
	float *xs0 = FL((keep16 ? 2 : L + 1) * A * N * H);
	w->xs16 = keep16 ? sk_arena_alloc(a, (size_t)(L * A * N * H) * sizeof(uint16_t)) : NULL;
	if (w->xs)
		for (int64_t l = 0; l <= L; l++)
			w->xs[l] = xs0 + (keep16 ? l % 2 : l) * A * N * H;
	w->pli = n3 ? FL(N * LP) : NULL;
	w->kst = FL(nkv * N * kvd);
	w->vst = FL(nkv * N * kvd);
	w->rec = sk_arena_alloc(ha, (size_t)n_rec * sizeof(sk_layer_acts));
	for (int i = 0; i < n_rec; i++) {
		sk_layer_acts r;
		r.modal1 = n3 ? FL(N * A) : NULL;
		r.p = n3 ? FL(A * N * H) : NULL;
		r.nrm = FL(N * H);
		r.lr = n3 ? FL(N * R) : NULL; /* the backward reads lam0 only: lr is never kept */
		r.lam0 = n3 && !(keep & SK_KEEP_LAUREL) ? FL(N * H) : NULL; /* kept: point_kept places it */
		r.q0 = FL(N * qd);
		r.q = FL(N * qd);
		r.k0 = FL(N * kvd);
		r.v0 = FL(N * kvd);
		r.att = keep & SK_KEEP_ATTN ? NULL : FL(N * qd);
		r.o = keep & SK_KEEP_ATTN ? NULL : FL(N * H);
		r.h1 = FL(N * H);
		r.mm = FL(N * H);
		r.g0 = FL(N * F);
		r.u = FL(N * F);
		r.z = FL(N * F);
		r.f = keep & SK_KEEP_DOWN ? NULL : FL(N * H);
		r.y = n3 ? FL(N * H) : NULL;
		r.modal2 = n3 ? FL(N * A) : NULL;
		r.vin = n3 ? FL(N * H) : NULL;
		r.pg0 = n3 && !(keep & SK_KEEP_PLE) ? FL(N * P) : NULL;
		r.psi0 = n3 && !(keep & SK_KEEP_PLE) ? FL(N * H) : NULL;
		r.mlp_saved = 0;
		if (w->rec)
			w->rec[i] = r;
	}
	w->n_rec = n_rec;
	w->keep = keep;
	w->kept_floats = keep ? kept_layout(c, keep, N, NULL, NULL) : 0;
	w->kept = keep ? FL(L * w->kept_floats) : NULL;
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
	w->h.hs = FL(A * NO * H);
	w->h.vk = n3 ? FL((A - 1) * NO * H) : NULL;
	w->h.vk_stride = NO * H;
	w->h.hsum = FL(NO * H);
	w->h.hn = FL(NO * H);
#undef FL
	sk_loss_plan(a, n_out, m->vocab, &w->lw);
}

/* The forward of gemma.c over the pass's sequences, recording into a. */
static sk_fwd fwd_of(sk_model *m, const tws *w, const sk_train_opts *o)
{
	sk_fwd f = { 0 };
	f.m = m;
	f.ops = w->ops;
	f.N = w->N;
	f.pos = w->in.pos;
	f.items = w->seq;
	f.n_items = w->n_seqs;
	f.spans = w->spans;
	f.k_new = w->kst;
	f.v_new = w->vst;
	f.pli = w->pli;
	f.lam = w->t1;
	f.t2 = w->t2;
	f.tP = w->tP;
	f.train_lora = w->ad;
	f.dropout = o->lora_dropout;
	f.dropout_seed = o->dropout_seed;
	return f;
}

/* ---- backward ---- */

/* dx (+)= dy W, and the LoRA pair's gradients and input gradient */
static int tlin_bwd(sk_model *m, const tws *w, const sk_tensor *t, int layer, int mod, const float *x, const float *dy,
                    int64_t n, float *dx, int accumulate)
{
	const sk_lora_pair *lp = w->ad && mod >= 0 ? sk_lora_get(w->ad, layer, (sk_lora_module)mod) : NULL;
	float *gA = lp ? sk_lora_grad_of(w->ad, layer, (sk_lora_module)mod, 0) : NULL;
	float *gB = lp ? sk_lora_grad_of(w->ad, layer, (sk_lora_module)mod, 1) : NULL;
	uint64_t seed = lp ? sk_gemma_lora_seed(w->seed, layer, mod) : 0;
	if (lp && gA && gB && OPS->linear_lora_bwd)
		return OPS->linear_lora_bwd(m->be, t, lp, x, dy, n, w->dropout, seed, gA, gB, dx, accumulate);
	if (OPS->linear_bwd(m->be, t, dy, n, dx, accumulate) != 0)
		return -1;
	if (!lp)
		return 0;
	return OPS->lora_bwd(m->be, lp, x, dy, n, w->dropout, seed, gA, gB, dx);
}

/* From the gradient of o_proj's output (do_) to the gradient of the normed
 * layer input, written to dn; K/V gradients go to the owning layer's
 * accumulators, and an owning layer takes them (consumers' included) back
 * through its k/v norms, RoPE and projections. */
static int attn_bwd(sk_model *m, tws *w, int l, const sk_layer_acts *a, const float *do_, float *dn)
{
	const sk_config *c = &m->cfg;
	const sk_layer *L = &m->layers[l];
	int64_t N = w->N;
	int hd = c->head_dim, nh = c->num_heads, nkv = c->num_kv_heads;
	int64_t kvd = (int64_t)nkv * hd, qd = (int64_t)nh * hd;
	float eps = c->rms_norm_eps;
	sk_rope_cfg rc = sk_gemma_layer_rope(c, L);
	if (tlin_bwd(m, w, &L->o, l, SK_LORA_O, a->att, do_, N, w->datt, 0) != 0)
		return -1;
	const sk_layer *S = &m->layers[L->kv_src];
	int64_t off = (int64_t)S->kv_slot * N * kvd;
	if (OPS->attention_bwd_spans) {
		if (OPS->attention_bwd_spans(m->be, a->q, w->kst + off, w->vst + off, w->spans, w->n_seqs, nh, nkv, hd,
		                             rc.window, sk_config_attn_scale(c), c->attn_logit_softcap, w->datt, w->dq,
		                             w->dk + off, w->dv + off, w->aws) != 0)
			return -1;
	} else {
		for (int s = 0; s < w->n_seqs; s++) {
			int64_t r0 = w->seq[s].row0, rn = w->seq[s].n;
			int64_t kr = off + r0 * kvd;
			if (OPS->attention_bwd(m->be, a->q + r0 * qd, w->kst + kr, w->vst + kr, rn, nh, nkv, hd, rc.window,
			                       sk_config_attn_scale(c), c->attn_logit_softcap, w->datt + r0 * qd,
			                       w->dq + r0 * qd, w->dk + kr, w->dv + kr, w->aws) != 0)
				return -1;
		}
	}
	OPS->rope_bwd(m->be, w->dq, N, nh, hd, w->in.pos, rc.theta, rc.factor);
	OPS->rmsnorm_bwd(m->be, a->q0, N * nh, hd, L->q_norm, eps, w->dq, w->dq, 0);
	if (tlin_bwd(m, w, &L->q, l, SK_LORA_Q, a->nrm, w->dq, N, dn, 0) != 0)
		return -1;
	if (L->kv_slot < 0)
		return 0;
	/* the owner comes after every layer that shares its K/V (the backward runs from the last
	 * layer down): their gradients are whole, and used up here, so worked on in place */
	float *dk = w->dk + off, *dv = w->dv + off;
	OPS->rope_bwd(m->be, dk, N, nkv, hd, w->in.pos, rc.theta, rc.factor);
	OPS->rmsnorm_bwd(m->be, a->k0, N * nkv, hd, L->k_norm, eps, dk, w->dkv, 0);
	if (tlin_bwd(m, w, &L->k, l, SK_LORA_K, a->nrm, w->dkv, N, dn, 1) != 0)
		return -1;
	if (c->arch == SK_ARCH_GEMMA3N)
		OPS->rmsnorm_bwd(m->be, a->v0, N * nkv, hd, NULL, eps, dv, dv, 0);
	return tlin_bwd(m, w, &L->v, l, SK_LORA_V, a->nrm, dv, N, dn, 1);
}

/* MLP backward from dy (the gradient of y = h1 + RMS(f)): adds the MLP
 * path's contribution into dy, which then holds dL/dh1. */
static int mlp_bwd(sk_model *m, tws *w, int l, const sk_layer_acts *a, float *dy)
{
	const sk_config *c = &m->cfg;
	const sk_layer *L = &m->layers[l];
	int64_t N = w->N, H = c->hidden_size;
	float eps = c->rms_norm_eps;
	OPS->rmsnorm_bwd(m->be, a->f, N, H, L->post_ffn_norm, eps, dy, w->t1, 0);
	const sk_lora_pair *lg = w->ad ? sk_lora_get(w->ad, l, SK_LORA_GATE) : NULL;
	const sk_lora_pair *lu = w->ad ? sk_lora_get(w->ad, l, SK_LORA_UP) : NULL;
	if (a->mlp_saved) { /* the forward computed again left g0, u and z in the backend's form */
		const sk_lora_pair *ld = sk_lora_get(w->ad, l, SK_LORA_DOWN);
		sk_gated_mlp_bwd b = { { &L->gate, &L->up, &L->down },
			               { lg, lu, ld },
			               a->mm,
			               N,
			               L->sparsity_z,
			               a->g0,
			               a->u,
			               a->z,
			               w->t1,
			               { sk_lora_grad_of(w->ad, l, SK_LORA_GATE, 0), sk_lora_grad_of(w->ad, l, SK_LORA_UP, 0),
			                 sk_lora_grad_of(w->ad, l, SK_LORA_DOWN, 0) },
			               { sk_lora_grad_of(w->ad, l, SK_LORA_GATE, 1), sk_lora_grad_of(w->ad, l, SK_LORA_UP, 1),
			                 sk_lora_grad_of(w->ad, l, SK_LORA_DOWN, 1) },
			               w->t2,
			               w->dF1 };
		if (OPS->gated_mlp_bwd(m->be, &b) != 0)
			return -1;
		OPS->rmsnorm_bwd(m->be, a->h1, N, H, L->pre_ffn_norm, eps, w->t2, dy, 1);
		return 0;
	}
	if (tlin_bwd(m, w, &L->down, l, SK_LORA_DOWN, a->z, w->t1, N, w->dF1, 0) != 0)
		return -1;
	int done = 0;
	if (OPS->gated_bwd && lg && lu) { /* both gradients straight into the two products */
		sk_gated_bwd gb = { a->g0, a->u, w->dF1, N, L->ffn, L->sparsity_z, a->mm, { &L->gate, &L->up }, { lg, lu },
			            w->dropout,
			            { sk_gemma_lora_seed(w->seed, l, SK_LORA_GATE), sk_gemma_lora_seed(w->seed, l, SK_LORA_UP) },
			            { sk_lora_grad_of(w->ad, l, SK_LORA_GATE, 0), sk_lora_grad_of(w->ad, l, SK_LORA_UP, 0) },
			            { sk_lora_grad_of(w->ad, l, SK_LORA_GATE, 1), sk_lora_grad_of(w->ad, l, SK_LORA_UP, 1) },
			            w->dF1, w->dF2, w->t2 };
		if ((done = OPS->gated_bwd(m->be, &gb)) < 0)
			return -1;
	}
	if (!done) {
		OPS->gelu_mul_bwd(m->be, a->g0, a->u, N, L->ffn, L->sparsity_z, w->dF1, w->dF1, w->dF2);
		if (tlin_bwd(m, w, &L->gate, l, SK_LORA_GATE, a->mm, w->dF1, N, w->t2, 0) != 0 ||
		    tlin_bwd(m, w, &L->up, l, SK_LORA_UP, a->mm, w->dF2, N, w->t2, 1) != 0)
			return -1;
	}
	OPS->rmsnorm_bwd(m->be, a->h1, N, H, L->pre_ffn_norm, eps, w->t2, dy, 1);
	return 0;
}

static int bwd_gemma3(sk_model *m, tws *w, int l, const sk_layer_acts *a, const float *x, float *dx, float *dxp)
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
	OPS->scale(BE, dx, N * H, 1.0f, dxp);
	OPS->rmsnorm_bwd(m->be, x, N, H, L->attn_norm, eps, w->dg, dxp, 1);
	return 0;
}

static int bwd_gemma3n(sk_model *m, tws *w, int l, const sk_layer_acts *a, const float *x, float *dx, float *dxp)
{
	const sk_config *c = &m->cfg;
	const sk_layer *L = &m->layers[l];
	int64_t N = w->N, H = c->hidden_size, P = c->hidden_size_per_layer_input, LP = (int64_t)c->num_layers * P;
	int A = c->altup_num_inputs, act = c->altup_active_idx;
	float eps = c->rms_norm_eps;
	const float rsqrt2 = (float)(1.0 / sqrt(2.0));
	float *t1 = w->t1, *t2 = w->t2, *g = w->dg;

	/* per-layer input: ψ was added to every stream but the active one (the first two summed
	 * in one op, not copied first) */
	const float *first = NULL;
	for (int k = 0; k < A; k++) {
		if (k == act)
			continue;
		if (!first && A > 2)
			first = dx + k * N * H;
		else if (!first)
			OPS->scale(BE, dx + k * N * H, N * H, 1.0f, t1);
		else {
			OPS->add(m->be, first, dx + k * N * H, N * H, 1.0f, t1);
			first = t1;
		}
	}
	OPS->rmsnorm_bwd(m->be, a->psi0, N, H, L->ple_post_norm, eps, t1, t1, 0);
	if (OPS->linear_bwd(m->be, &L->ple_proj, t1, N, w->tP, 0) != 0)
		return -1;
	OPS->mul_rows(BE, w->tP, w->pli + (int64_t)l * P, LP, N, P, w->tP);
	OPS->gelu_mul_bwd(m->be, a->pg0, NULL, N, P, 0.0f, w->tP, w->tP, NULL);
	if (OPS->linear_bwd(m->be, &L->ple_gate, w->tP, N, t1, 0) != 0)
		return -1;
	if (c->altup_correct_scale)
		OPS->mul_rows(m->be, t1, L->altup_scale, 0, N, H, t1);
	OPS->add(m->be, dx + act * N * H, t1, N * H, 1.0f, dx + act * N * H);

	/* AltUp correct, its router included */
	OPS->altup_correct_bwd(m->be, a->p, a->y, N, H, A, act, L->corr_coef, a->modal2, dx, w->dp, w->dy, w->dm);
	OPS->altup_router_bwd(m->be, a->y, N, H, L->router_norm, eps, L->router, A, a->modal2, w->dm, w->dy);

	/* y = h1 + RMS(MLP(RMS(h1))) */
	if (mlp_bwd(m, w, l, a, w->dy) != 0)
		return -1;
	/* h1 = ((a + o') + λ) / √2 */
	OPS->scale(BE, w->dy, N * H, rsqrt2, g);

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
	OPS->zero(BE, w->dx, A * N * H);
	OPS->rmsnorm_bwd(BE, w->h.hsum, no, H, m->final_norm, c->rms_norm_eps, w->dhn, w->dh, 0);
	if (A > 1)
		OPS->scale(BE, w->dh, no * H, 1.0f / (float)A, w->dh);
	float *dx0 = w->dhs + act * no * H;
	OPS->scale(BE, w->dh, no * H, 1.0f, dx0);
	const float *x0 = w->h.hs + act * no * H;
	int j = 0;
	for (int k = 0; k < A; k++) {
		if (k == act)
			continue;
		OPS->rescale_rms_bwd(BE, w->h.vk + j * w->h.vk_stride, x0, no, H, w->dh, w->dvk, dx0);
		if (OPS->linear_bwd(BE, &m->altup_unembed[j], w->dvk, no, w->dhs + k * no * H, 0) != 0)
			return -1;
		j++;
	}
	for (int k = 0; k < A; k++)
		OPS->scatter_rows(BE, w->dhs + k * no * H, H, w->in.sel, no, w->dx + k * N * H);
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

static sk_train_timing timing;

static int timing_on(void)
{
	static int on = -1;
	if (on < 0) {
		const char *e = getenv("SK_TRAIN_TIMING");
		on = e && !strcmp(e, "1");
	}
	return on;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int sk_train_timing_get(sk_train_timing *t)
{
	*t = timing;
	return timing_on();
}

void sk_train_timing_line(char *buf, size_t cap)
{
	if (cap)
		buf[0] = 0;
	if (!timing_on() || timing.calls == 0)
		return;
	double k = 1e3 / (double)timing.calls;
	snprintf(buf, cap,
	         "# host time a micro-step (%lld): forward queued %.2f ms, loss waited %.2f ms, backward queued "
	         "%.2f ms, backward waited %.2f ms\n",
	         timing.calls, k * timing.fwd_queue_s, k * timing.loss_wait_s, k * timing.bwd_queue_s,
	         k * timing.bwd_wait_s);
}

int sk_model_loss_grad(sk_model *m, sk_lora *adapter, const sk_train_seq *seqs, int n_seqs,
                       const sk_train_opts *opts, double *loss_sum, int64_t *n_targets)
{
	int tm = timing_on();
	double t0 = tm ? mono_s() : 0, t1 = t0, t2 = t0, t3 = t0;
	sk_train_opts def = { 0.0f, 0, 1, 1.0f, 1, 0, 0 };
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

	/* backend memory (meas) and host memory (hmeas), each led by the index arrays */
	sk_arena meas, hmeas;
	sk_arena_init_measure(&meas);
	sk_arena_init_measure(&hmeas);
	tws tmp = w;
	pass_ints h;
	plan_ints(&hmeas, N, n_out, &h);
	size_t int_bytes = hmeas.peak;
	/* the kept inputs in bf16: only when they are kept (checkpointing, a backward) */
	int keep16 = o->keep_bf16 && want_grad && n_rec == 1 && w.ops->to_bf16 && w.ops->from_bf16;
	unsigned keep = keep_mask(c, o, n_rec, want_grad);
	plan(&meas, &hmeas, m, N, n_out, n_seqs, n_rec, want_grad, keep16, keep, &tmp);
	size_t most = SIZE_MAX;
	if ((keep && !room_for(m, meas.peak + 64, &most)) || sk_model_workspace_upto(m, meas.peak + 64, most) != 0) {
		if (!keep)
			return -1;
		/* no room for the kept outputs: every product computed again instead (the same
		 * gradients, more time), in the workspace that needs */
		keep = 0;
		sk_arena_init_measure(&meas);
		sk_arena_init_measure(&hmeas);
		plan_ints(&hmeas, N, n_out, &h);
		plan(&meas, &hmeas, m, N, n_out, n_seqs, n_rec, want_grad, keep16, keep, &tmp);
		if (m->ws.cap > meas.peak + meas.peak / 4) /* a kept plan's: give the rest back */
			sk_model_workspace_release(m);
		if (sk_model_workspace(m, meas.peak + 64) != 0)
			return -1;
		sk_error_clear();
	}
	if (sk_model_host_stage(m, hmeas.peak) != 0)
		return -1;
	plan_ints(&m->hstage, N, n_out, &h);
	plan(&m->ws, &m->hstage, m, N, n_out, n_seqs, n_rec, want_grad, keep16, keep, &w);
	const int64_t set = (int64_t)(c->arch == SK_ARCH_GEMMA3N ? c->altup_num_inputs : 1) * N * c->hidden_size;

	int64_t r = 0, o_i = 0;
	for (int s = 0; s < n_seqs; s++) {
		const sk_train_seq *q = &seqs[s];
		w.seq[s] = (sk_fwd_item){ r, q->n, s };
		w.spans[s] = (sk_row_span){ r, q->n };
		for (int i = 0; i < q->n; i++, r++) {
			h.ids[r] = q->ids[i];
			h.pos[r] = i;
			if (i > 0 && q->target && q->target[i]) {
				h.sel[o_i] = r - 1; /* the logits at i - 1 predict token i */
				h.labels[o_i++] = q->ids[i];
			}
		}
	}
	/* ids outside the per-layer table use row 0, as transformers does */
	int64_t prow = c->arch == SK_ARCH_GEMMA3N ? sk_tensor_rows(&m->ple_embed) : 0;
	for (int64_t i = 0; i < N; i++)
		h.ple_ids[i] = h.ids[i] < c->vocab_size_per_layer_input && h.ids[i] < prow ? h.ids[i] : 0;
	if (w.ops->upload(m->be, w.in.ids, h.ids, int_bytes) != 0)
		return -1;

	sk_fwd f = fwd_of(m, &w, o);
	f.transient = n_rec == 1; /* each layer is computed again for its backward */
	if (sk_gemma_embed(&f, w.in.ids, w.in.ple_ids, w.t3, w.xs[0]) != 0)
		return -1;
	for (int l = 0; l < c->num_layers; l++) {
		if (keep16) /* layer l's input kept for its backward */
			w.ops->to_bf16(m->be, w.xs[l], set, w.xs16 + l * set);
		point_kept(m, &w, l);
		if (sk_gemma_layer(&f, l, &w.rec[n_rec > 1 ? l : 0], w.xs[l], w.xs[l + 1]) != 0)
			return -1;
	}
	if (tm)
		t1 = mono_s();
	double loss = 0;
	if (n_out > 0) {
		if (sk_gemma_final_hidden(&f, w.xs[c->num_layers], w.in.sel, n_out, &w.h) != 0)
			return -1;
		float *dhn = want_grad ? w.dhn : NULL;
		if (sk_loss_head(m, w.ops, w.h.hn, w.in.labels, n_out, o->grad_scale, dhn, &loss, &w.lw) != 0)
			return -1;
	}
	if (tm)
		t2 = mono_s();
	if (want_grad) {
		int64_t kvd = (int64_t)c->num_kv_heads * c->head_dim;
		w.ops->zero(m->be, w.dk, m->n_kv_layers * N * kvd);
		w.ops->zero(m->be, w.dv, m->n_kv_layers * N * kvd);
		if (head_bwd(m, &w) != 0)
			return -1;
		for (int l = c->num_layers - 1; l >= 0; l--) {
			sk_layer_acts *a = &w.rec[n_rec > 1 ? l : 0];
			if (keep16)
				w.ops->from_bf16(m->be, w.xs16 + l * set, set, w.xs[l]);
			/* recompute from the kept input, skipping what made the kept outputs */
			point_kept(m, &w, l);
			f.kept = w.keep;
			f.transient = 0;
			if (n_rec == 1 && sk_gemma_layer(&f, l, a, w.xs[l], w.xs[l + 1]) != 0)
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
	if (tm) {
		t3 = mono_s();
		float probe;
		if (w.ops->download(m->be, &probe, w.xs[0], sizeof probe) != 0) /* waits for the device */
			return -1;
		timing.calls++;
		timing.fwd_queue_s += t1 - t0;
		timing.loss_wait_s += t2 - t1;
		timing.bwd_queue_s += t3 - t2;
		timing.bwd_wait_s += mono_s() - t3;
	}
	if (loss_sum)
		*loss_sum = loss;
	if (n_targets)
		*n_targets = n_out;
	return 0;
}
