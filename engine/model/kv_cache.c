/* KV cache: per sequence, one K and one V buffer per KV-owning layer.
 * Sliding layers keep a ring of sliding_window slots (position p in slot
 * p % window); full-attention layers keep max_ctx slots. Buffers are the
 * backend's zeroed memory (calloc on the CPU, so untouched context costs no
 * resident memory there). */
#include "engine/model/model_internal.h"

#include <stdlib.h>

#include "engine/error.h"
#include "engine/i18n.h"

sk_kv_cache *sk_kv_cache_new(const sk_model *m, int n_seqs, int max_ctx)
{
	const sk_config *c = &m->cfg;
	if (max_ctx <= 0)
		max_ctx = c->max_position_embeddings;
	if (n_seqs < 1 || n_seqs > 4096 || max_ctx < 1 || (c->max_position_embeddings > 0 && max_ctx > c->max_position_embeddings)) {
		sk_fail(_("KV cache: %d sequences of %d tokens is out of range (the model allows %d tokens)"), n_seqs, max_ctx,
		        c->max_position_embeddings);
		return NULL;
	}
	sk_kv_cache *kv = calloc(1, sizeof *kv);
	if (!kv)
		goto oom;
	static _Atomic uint64_t serials;
	kv->m = m;
	kv->serial = ++serials;
	kv->n_seqs = n_seqs;
	kv->max_ctx = max_ctx;
	kv->n_layers = m->n_kv_layers;
	kv->kv_dim = (int64_t)c->num_kv_heads * c->head_dim;
	size_t nb = (size_t)n_seqs * (size_t)(kv->n_layers ? kv->n_layers : 1);
	kv->cap = calloc((size_t)(kv->n_layers ? kv->n_layers : 1), sizeof *kv->cap);
	kv->k = calloc(nb, sizeof *kv->k);
	kv->v = calloc(nb, sizeof *kv->v);
	kv->pos = calloc((size_t)n_seqs, sizeof *kv->pos);
	kv->seen_words = ((int64_t)m->vocab + 31) / 32;
	if (!kv->cap || !kv->k || !kv->v || !kv->pos)
		goto oom;
	for (int l = 0; l < c->num_layers; l++) {
		const sk_layer *L = &m->layers[l];
		if (L->kv_slot < 0)
			continue;
		int64_t cap = max_ctx;
		/* a sliding ring holds SK_KV_ROLLBACK positions beyond its window, so
		 * that a sequence can be cut back that far (sk_kv_cache_keep) */
		if (L->sliding && c->sliding_window > 0 && c->sliding_window + SK_KV_ROLLBACK < cap)
			cap = c->sliding_window + SK_KV_ROLLBACK;
		kv->cap[L->kv_slot] = cap;
	}
	sk_backend *be = m->be;
	for (int s = 0; s < n_seqs; s++)
		for (int j = 0; j < kv->n_layers; j++) {
			size_t i = (size_t)s * kv->n_layers + j, bytes = (size_t)(kv->cap[j] * kv->kv_dim) * sizeof(float);
			kv->k[i] = be->ops->alloc(be, bytes, _("the KV cache"));
			kv->v[i] = kv->k[i] ? be->ops->alloc(be, bytes, _("the KV cache")) : NULL;
			if (!kv->k[i] || !kv->v[i]) {
				sk_kv_cache_free(kv);
				return NULL;
			}
		}
	return kv;
oom:
	sk_kv_cache_free(kv);
	sk_fail("%s", _("out of memory (KV cache)"));
	return NULL;
}

void sk_kv_cache_free(sk_kv_cache *kv)
{
	if (!kv)
		return;
	size_t nb = (size_t)kv->n_seqs * (size_t)(kv->n_layers ? kv->n_layers : 1);
	sk_backend *be = kv->m->be;
	if (kv->seen)
		be->ops->free(be, kv->seen);
	for (size_t i = 0; i < nb; i++) {
		if (kv->k && kv->k[i])
			be->ops->free(be, kv->k[i]);
		if (kv->v && kv->v[i])
			be->ops->free(be, kv->v[i]);
	}
	free(kv->k);
	free(kv->v);
	free(kv->cap);
	free(kv->pos);
	free(kv);
}

int sk_kv_cache_n_seqs(const sk_kv_cache *kv)
{
	return kv->n_seqs;
}

int sk_kv_cache_max_ctx(const sk_kv_cache *kv)
{
	return kv->max_ctx;
}

void sk_kv_cache_clear(sk_kv_cache *kv, int seq)
{
	/* old entries are never read: positions below pos do not exist any more */
	if (seq < 0 || seq >= kv->n_seqs)
		return;
	kv->pos[seq] = 0;
	if (kv->seen) /* a bitmap of 32-bit words, cleared as floats of the same size */
		kv->m->be->ops->zero(kv->m->be, (float *)(kv->seen + (int64_t)seq * kv->seen_words), kv->seen_words);
}

uint64_t sk_kv_cache_bytes(const sk_kv_cache *kv)
{
	uint64_t b = 0;
	for (int j = 0; j < kv->n_layers; j++)
		b += 2 * (uint64_t)kv->cap[j] * (uint64_t)kv->kv_dim * sizeof(float);
	return b * (uint64_t)kv->n_seqs;
}

int sk_kv_cache_keep(sk_kv_cache *kv, int seq, int n)
{
	if (seq < 0 || seq >= kv->n_seqs)
		return 0;
	int pos = kv->pos[seq];
	if (n >= pos)
		return pos;
	/* positions past n were written over the oldest ones of each ring: going
	 * back is sound while no ring lost a position the window still needs */
	const sk_config *c = &kv->m->cfg;
	int64_t spare = INT64_MAX;
	for (int j = 0; j < kv->n_layers; j++)
		if (kv->cap[j] < kv->max_ctx && kv->cap[j] - c->sliding_window < spare)
			spare = kv->cap[j] - c->sliding_window;
	if (n < 0 || pos - n > spare) {
		sk_kv_cache_clear(kv, seq);
		return 0;
	}
	kv->pos[seq] = n;
	return n;
}

int sk_kv_cache_pos(const sk_kv_cache *kv, int seq)
{
	return seq >= 0 && seq < kv->n_seqs ? kv->pos[seq] : -1;
}
