/* Inference: sk_model_forward runs the model definition (gemma.c) over a
 * ragged batch with a KV cache. Every item's new tokens are flattened into
 * N rows; new K/V are kept in the workspace and written to the caches only
 * at the end, so KV-shared layers read the same values as their producers
 * and a failed call leaves the caches as they were. */
#include "engine/model/gemma_forward.h"

#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"

/* The index arrays of one forward: filled on the host, read by the backend. */
typedef struct {
	int32_t *ids, *ple_ids, *pos;
	uint8_t *mask;        /* LoRA on, per row (NULL when no item has it on) */
	int64_t *sel;         /* rows whose logits are wanted */
	/* drawing on the backend: */
	int32_t *row_seq;     /* [N] each row's sequence, for the seen-ids bitmaps */
	int32_t *out_seq;     /* [n_out] the sequence of each logits row */
	sk_sample_row *draw;  /* [n_out] */
	int32_t *drawn;       /* [n_out] the ids drawn (written by the backend) */
} fwd_ints;

/* The shape of one forward. */
typedef struct {
	int64_t N, n_out;
	int n_items, want_mask, sample;
} fwd_shape;

/* Activations of one forward, carved from the model's workspace. */
typedef struct {
	fwd_ints in;
	float *x, *c;     /* stream sets [A][N][H]: a layer reads one and writes the other */
	sk_layer_acts a;  /* one set shared by every layer */
	float *lam, *t2, *tmp;
	float *k_new, *v_new;
	float *pli;
	sk_head_acts h;
	float *logits;    /* [n_out][V], when the backend cannot write the caller's */
} fwd_ws;

static void plan_ints(sk_arena *a, const fwd_shape *s, fwd_ints *o)
{
	memset(o, 0, sizeof *o);
	o->ids = sk_arena_alloc(a, (size_t)s->N * sizeof(int32_t));
	o->ple_ids = sk_arena_alloc(a, (size_t)s->N * sizeof(int32_t));
	o->pos = sk_arena_alloc(a, (size_t)s->N * sizeof(int32_t));
	o->mask = s->want_mask ? sk_arena_alloc(a, (size_t)s->N) : NULL;
	o->sel = sk_arena_alloc(a, (size_t)s->n_out * sizeof(int64_t));
	if (s->sample) {
		o->row_seq = sk_arena_alloc(a, (size_t)s->N * sizeof(int32_t));
		o->out_seq = sk_arena_alloc(a, (size_t)s->n_out * sizeof(int32_t));
		o->draw = sk_arena_alloc(a, (size_t)s->n_out * sizeof(sk_sample_row));
		o->drawn = sk_arena_alloc(a, (size_t)s->n_out * sizeof(int32_t));
	}
}

static void plan(sk_arena *a, const sk_model *m, const fwd_shape *sh, fwd_ws *w)
{
	int64_t N = sh->N, n_out = sh->n_out;
	const sk_config *c = &m->cfg;
	int64_t H = c->hidden_size, qd = (int64_t)c->num_heads * c->head_dim;
	int64_t kvd = (int64_t)c->num_kv_heads * c->head_dim, F = 0;
	for (int l = 0; l < c->num_layers; l++)
		if (c->intermediate_size[l] > F)
			F = c->intermediate_size[l];
	int n3 = c->arch == SK_ARCH_GEMMA3N;
	int64_t A = n3 ? c->altup_num_inputs : 1;
	int64_t LP = n3 ? (int64_t)c->num_layers * c->hidden_size_per_layer_input : 0;
	int64_t P = n3 ? c->hidden_size_per_layer_input : 0;
#define FL(n) sk_arena_floats(a, (size_t)(n))
	memset(w, 0, sizeof *w);
	plan_ints(a, sh, &w->in);
	w->x = FL(A * N * H);
	w->c = FL(A * N * H);
	sk_layer_acts *s = &w->a;
	s->nrm = FL(N * H);
	s->q0 = s->q = FL(N * qd);
	s->att = FL(N * qd);
	s->o = FL(N * H);
	s->h1 = FL(N * H);
	s->mm = s->vin = FL(N * H);
	s->g0 = s->z = FL(N * F);
	s->u = FL(N * F);
	s->f = s->psi0 = FL(N * H);
	w->t2 = FL(N * H);
	if (n3) {
		s->modal1 = s->modal2 = FL(N * A);
		s->p = FL(A * N * H);
		s->lr = FL(N * c->laurel_rank);
		s->lam0 = w->lam = FL(N * H);
		s->y = FL(N * H);
		s->pg0 = FL(N * P);
		w->pli = FL(N * LP);
	}
	w->tmp = FL(N * (LP > H ? LP : H));
	w->k_new = FL(m->n_kv_layers * N * kvd);
	w->v_new = FL(m->n_kv_layers * N * kvd);
	/* the head reuses buffers free by then: p for the gathered rows, c for
	 * the unembedded streams (Gemma 3: one gathered stream, normed in place) */
	w->h.hs = n3 ? s->p : FL(n_out * H);
	w->h.hsum = n3 ? FL(n_out * H) : w->h.hs;
	w->h.vk = w->h.hn = n3 ? w->c : w->h.hs;
	w->h.vk_stride = 0;
	if (!m->be->ops->host_memory || sh->sample)
		w->logits = FL(n_out * (int64_t)m->vocab);
#undef FL
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

/* The host side of one forward: the index arrays, laid out as at the start
 * of the workspace (plan_ints comes first in both) so that one upload
 * moves them all, and the items' rows. */
static int stage(sk_model *m, const fwd_shape *s, fwd_ints *h, sk_fwd_item **items, size_t *int_bytes)
{
	sk_arena meas;
	sk_arena_init_measure(&meas);
	fwd_ints t;
	plan_ints(&meas, s, &t);
	*int_bytes = meas.peak;
	sk_arena_alloc(&meas, (size_t)s->n_items * sizeof(sk_fwd_item));
	if (sk_model_host_stage(m, meas.peak) != 0)
		return -1;
	plan_ints(&m->hstage, s, h);
	*items = sk_arena_alloc(&m->hstage, (size_t)s->n_items * sizeof(sk_fwd_item));
	return 0;
}

/* Writes the new K/V of every item into its cache (ring: only the last
 * cap); the positions advance once the whole forward has succeeded. */
static void store_kv(sk_model *m, const sk_kv_cache *kv, const sk_fwd_item *fi, int n_items, const fwd_ws *w,
                     int64_t N)
{
	int64_t kvd = kv->kv_dim;
	const sk_backend_ops *ops = m->be->ops;
	enum { MANY = 64 };
	for (int it = 0; it < n_items; it++) {
		const int32_t *pos = w->in.pos + fi[it].row0;
		sk_ring_dst d[MANY];
		int nd = 0;
		for (int j = 0; j < kv->n_layers; j++) {
			size_t ci = (size_t)fi[it].seq * kv->n_layers + (size_t)j;
			int64_t r = (int64_t)j * N + fi[it].row0;
			if (!ops->ring_write_many) {
				ops->ring_write(m->be, w->k_new + r * kvd, fi[it].n, kvd, kv->k[ci], kv->cap[j], pos);
				ops->ring_write(m->be, w->v_new + r * kvd, fi[it].n, kvd, kv->v[ci], kv->cap[j], pos);
				continue;
			}
			d[nd++] = (sk_ring_dst){ w->k_new + r * kvd, kv->k[ci], kv->cap[j] };
			d[nd++] = (sk_ring_dst){ w->v_new + r * kvd, kv->v[ci], kv->cap[j] };
			if (nd == MANY || j == kv->n_layers - 1) { /* one call for a step's rows of every layer */
				ops->ring_write_many(m->be, fi[it].n, kvd, pos, d, nd);
				nd = 0;
			}
		}
	}
}

/* What a recording of this forward depends on: its shape, the buffers it
 * names (workspace, cache, adapter) and the output it writes; positions
 * and token ids are data, read from backend memory at replay. FNV-1a. */
static uint64_t forward_key(const sk_model *m, const sk_kv_cache *kv, const sk_batch_item *items, int n_items,
                            const fwd_shape *s, const float *logits)
{
	uint64_t h = 1469598103934665603ull;
#define MIX(v) (h = (h ^ (uint64_t)(v)) * 1099511628211ull)
	MIX((uintptr_t)m->ws.base);
	MIX(kv->serial); /* a new cache may reuse a freed one's addresses: never its serial */
	MIX((uintptr_t)m->lora);
	MIX((uintptr_t)(m->be->ops->host_memory ? logits : NULL));
	MIX(s->want_mask);
	MIX(s->sample);
	MIX((uintptr_t)kv->seen);
	MIX(n_items);
	for (int i = 0; i < n_items; i++) {
		MIX(items[i].seq);
		MIX(items[i].n);
		MIX(items[i].all_logits);
	}
#undef MIX
	return h;
}

static int run_ops(sk_model *m, const sk_kv_cache *kv, const sk_fwd_item *items_rows, const fwd_shape *sh,
                   fwd_ws *wp, float *lg);

/* The forward of sk_model_forward and sk_model_forward_sample: logits to the
 * caller, or (draws) one id drawn per item on the backend. */
static int forward(sk_model *m, sk_kv_cache *kv, const sk_batch_item *items, int n_items, float *logits,
                   const sk_draw *draws, int32_t *drawn)
{
	fwd_shape sh = { 0, 0, n_items, 0, draws != NULL };
	if (check_items(m, kv, items, n_items, &sh.N, &sh.n_out, &sh.want_mask) != 0)
		return -1;
	const sk_config *c = &m->cfg;
	const sk_backend_ops *ops = m->be->ops;
	if (draws) {
		if (sh.n_out != n_items)
			return sk_fail("%s", _("forward: drawing on the device takes one logits row per sequence"));
		if (!kv->seen) { /* the seen-ids bitmaps, made the first time they are needed */
			size_t bytes = (size_t)kv->n_seqs * (size_t)kv->seen_words * sizeof(uint32_t);
			if (!(kv->seen = ops->alloc(m->be, bytes, _("the seen-token bitmaps"))))
				return -1;
		}
	}
	fwd_ws w;
	sk_arena meas;
	sk_arena_init_measure(&meas);
	plan(&meas, m, &sh, &w);
	if (sk_model_workspace(m, meas.peak + meas.peak / 4) != 0)
		return -1;
	plan(&m->ws, m, &sh, &w);
	fwd_ints h;
	sk_fwd_item *items_rows;
	size_t int_bytes;
	if (stage(m, &sh, &h, &items_rows, &int_bytes) != 0)
		return -1;
	int64_t r = 0, o = 0;
	for (int it = 0; it < n_items; it++) {
		const sk_batch_item *b = &items[it];
		items_rows[it] = (sk_fwd_item){ r, b->n, b->seq };
		for (int k = 0; k < b->n; k++, r++) {
			h.ids[r] = b->ids[k];
			h.pos[r] = kv->pos[b->seq] + k;
			if (h.mask)
				h.mask[r] = (uint8_t)(b->adapter_on != 0);
			if (h.row_seq)
				h.row_seq[r] = b->seq;
			if (b->all_logits || k == b->n - 1)
				h.sel[o++] = r;
		}
		if (draws) {
			const sk_draw *d = &draws[it];
			h.out_seq[it] = b->seq;
			h.draw[it] = (sk_sample_row){ d->temperature, d->top_p, d->min_p, d->repeat_penalty, d->top_k,
				                      d->greedy, d->u };
		}
	}
	/* ids outside the per-layer table use row 0, as transformers does */
	int64_t prow = c->arch == SK_ARCH_GEMMA3N ? sk_tensor_rows(&m->ple_embed) : 0;
	for (int64_t i = 0; i < sh.N; i++)
		h.ple_ids[i] = h.ids[i] < c->vocab_size_per_layer_input && h.ids[i] < prow ? h.ids[i] : 0;
	if (ops->upload(m->be, w.in.ids, h.ids, int_bytes) != 0)
		return -1;

	int rec = ops->record_begin ? ops->record_begin(m->be, forward_key(m, kv, items, n_items, &sh, logits)) : 0;
	if (rec < 0)
		return -1;
	float *lg = ops->host_memory && !draws ? logits : w.logits;
	if (rec == 0) {
		int ok = run_ops(m, kv, items_rows, &sh, &w, lg) == 0;
		int end = ops->record_end ? ops->record_end(m->be, ok) : 0;
		if (end == 1) /* the recording failed before anything ran: run it plainly */
			ok = run_ops(m, kv, items_rows, &sh, &w, lg) == 0;
		if (end < 0 || !ok)
			return -1;
	}
	if (draws) {
		if (ops->download(m->be, drawn, w.in.drawn, (size_t)n_items * sizeof(int32_t)) != 0)
			return -1;
	} else if (lg != logits && ops->download(m->be, logits, lg, (size_t)(sh.n_out * m->vocab) * sizeof(float)) != 0) {
		return -1;
	}
	for (int it = 0; it < n_items; it++)
		kv->pos[items[it].seq] += items[it].n;
	return 0;
}

int sk_model_forward(sk_model *m, sk_kv_cache *kv, const sk_batch_item *items, int n_items, float *logits)
{
	return forward(m, kv, items, n_items, logits, NULL, NULL);
}

int sk_model_can_draw(const sk_model *m)
{
	return m->be->ops->sample != NULL;
}

int sk_model_forward_draw(sk_model *m, sk_kv_cache *kv, const sk_batch_item *items, int n_items, const sk_draw *draws,
                          int32_t *ids)
{
	if (!sk_model_can_draw(m))
		return sk_fail(_("the %s backend does not draw tokens itself"), m->be->ops->name);
	return forward(m, kv, items, n_items, NULL, draws, ids);
}

/* The ops of one forward, from the uploaded index arrays to the logits and
 * the new K/V in the caches. */
static int run_ops(sk_model *m, const sk_kv_cache *kv, const sk_fwd_item *items_rows, const fwd_shape *sh,
                   fwd_ws *wp, float *lg)
{
	int64_t N = sh->N, n_out = sh->n_out;
	int n_items = sh->n_items;
	const sk_config *c = &m->cfg;
	const sk_backend_ops *ops = m->be->ops;
	fwd_ws w = *wp;
	sk_fwd f = { 0 };
	f.m = m;
	f.ops = ops;
	f.N = N;
	f.pos = w.in.pos;
	f.items = items_rows;
	f.n_items = n_items;
	f.kv = kv;
	f.k_new = w.k_new;
	f.v_new = w.v_new;
	f.pli = w.pli;
	f.lam = w.lam;
	f.t2 = w.t2;
	f.tP = w.a.pg0;
	f.lora_rows = w.in.mask;

	if (sk_gemma_embed(&f, w.in.ids, w.in.ple_ids, w.tmp, w.x) != 0)
		return -1;
	for (int l = 0; l < c->num_layers; l++) {
		if (sk_gemma_layer(&f, l, &w.a, w.x, w.c) != 0)
			return -1;
		float *t = w.x; /* the output streams are the next layer's input */
		w.x = w.c;
		w.c = t;
	}
	/* the head's scratch for unembedded streams follows the swaps */
	if (c->arch == SK_ARCH_GEMMA3N)
		w.h.vk = w.h.hn = w.c;
	if (sk_gemma_final_hidden(&f, w.x, w.in.sel, n_out, &w.h) != 0)
		return -1;
	/* tied LM head: the unscaled embedding matrix */
	if (ops->linear(m->be, &m->embed, w.h.hn, n_out, lg, NULL, NULL) != 0)
		return -1;
	if (c->final_logit_softcap > 0)
		ops->softcap(m->be, lg, n_out * (int64_t)m->vocab, c->final_logit_softcap);
	if (sh->sample) {
		/* this forward's tokens join their sequences' history before the draw */
		ops->mark_seen(m->be, kv->seen, kv->seen_words, w.in.ids, w.in.row_seq, N);
		if (ops->sample(m->be, lg, n_out, m->vocab, w.in.draw, kv->seen, kv->seen_words, w.in.out_seq,
		                w.in.drawn) != 0)
			return -1;
	}
	store_kv(m, kv, items_rows, n_items, &w, N);
	return 0;
}
