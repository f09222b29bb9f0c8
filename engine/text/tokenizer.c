/* Tokenizer core: the internal representation's validation and indexes,
 * lookups, and encoding (added tokens first, then byte-fallback BPE with a
 * heap of candidate merges) exactly as HF `tokenizers` encodes. */
#include "engine/text/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/text/tokenizer_model.h"

/* ---- ids ---- */

int sk_ids_push(sk_ids *ids, int32_t id)
{
	if (ids->n == ids->cap) {
		size_t cap = ids->cap ? ids->cap * 2 : 64;
		int32_t *v = realloc(ids->v, cap * sizeof *v);
		if (!v)
			return sk_fail(_("out of memory"));
		ids->v = v;
		ids->cap = cap;
	}
	ids->v[ids->n++] = id;
	return 0;
}

void sk_ids_free(sk_ids *ids)
{
	free(ids->v);
	ids->v = NULL;
	ids->n = ids->cap = 0;
}

/* ---- hashing ---- */

static inline uint64_t sk_mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* Word-at-a-time multiplicative hash: fast enough to key the cache on the
 * whole 33 MB tokenizer.json (a few ms), not meant to resist attackers. */
uint64_t sk_tok_hash_bytes(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = seed ^ (len * 0x9E3779B97F4A7C15ULL);
	uint64_t h2 = ~seed;
	size_t i = 0;
	for (; i + 16 <= len; i += 16) {
		uint64_t w, w2;
		memcpy(&w, p + i, 8);
		memcpy(&w2, p + i + 8, 8);
		h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
		h2 = (h2 ^ w2) * 0xC2B2AE3D27D4EB4FULL;
		h ^= h >> 31;
		h2 ^= h2 >> 29;
	}
	uint64_t tail = 0;
	size_t k = 0;
	for (; i < len; i++, k++) {
		tail |= (uint64_t)p[i] << (8 * (k & 7));
		if ((k & 7) == 7) {
			h = (h ^ tail) * 0x9E3779B97F4A7C15ULL;
			h ^= h >> 31;
			tail = 0;
		}
	}
	h = (h ^ tail ^ (k << 56)) * 0x9E3779B97F4A7C15ULL;
	return sk_mix64(h ^ sk_mix64(h2));
}

static size_t sk_pow2_at_least(size_t n)
{
	size_t p = 16;
	while (p < n)
		p <<= 1;
	return p;
}

/* Length of the UTF-8 character at p (1 for an invalid byte, which then
 * goes through byte fallback on its own). */
size_t sk_tok_utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len;
	if (c < 0x80)
		return 1;
	else if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4;
	else
		return 1;
	if (len > n)
		return 1;
	for (size_t k = 1; k < len; k++)
		if ((p[k] & 0xC0) != 0x80)
			return 1;
	if (c == 0xE0 && p[1] < 0xA0)
		return 1;
	if (c == 0xED && p[1] > 0x9F)
		return 1;
	if (c == 0xF0 && p[1] < 0x90)
		return 1;
	if (c == 0xF4 && p[1] > 0x8F)
		return 1;
	return len;
}

/* ---- construction ---- */

sk_tokenizer *sk_tok_alloc(int32_t n_vocab, const char *name)
{
	if (n_vocab < 1 || n_vocab > SK_TOK_MAX_VOCAB) {
		sk_fail(_("%s: vocabulary size %ld out of range"), name, (long)n_vocab);
		return NULL;
	}
	sk_tokenizer *t = calloc(1, sizeof *t);
	if (!t)
		goto oom;
	t->n_vocab = n_vocab;
	t->off = calloc((size_t)n_vocab + 1, sizeof *t->off);
	t->flags = calloc((size_t)n_vocab, 1);
	t->name = strdup(name ? name : "tokenizer");
	if (!t->off || !t->flags || !t->name)
		goto oom;
	t->bos = t->eos = t->unk = t->pad = -1;
	return t;
oom:
	sk_tokenizer_free(t);
	sk_fail(_("%s: out of memory"), name);
	return NULL;
}

void sk_tokenizer_free(sk_tokenizer *t)
{
	if (!t)
		return;
	free(t->text);
	free(t->off);
	free(t->flags);
	free(t->merges);
	free(t->vocab_slots);
	free(t->merge_slots);
	free(t->trie_edges);
	free(t->trie_token);
	free(t->name);
	free(t);
}

int32_t sk_tok_lookup(const sk_tokenizer *t, const char *s, size_t n)
{
	if (!t->vocab_slots)
		return -1;
	size_t i = (size_t)sk_tok_hash_bytes(s, n, 0) & t->vocab_mask;
	for (;;) {
		int32_t id = t->vocab_slots[i];
		if (id < 0)
			return -1;
		size_t len;
		const char *p = sk_tok_piece(t, id, &len);
		if (len == n && memcmp(p, s, n) == 0)
			return id;
		i = (i + 1) & t->vocab_mask;
	}
}

static inline uint64_t sk_pair_key(int32_t a, int32_t b)
{
	return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
}

static inline const sk_tok_merge_slot *sk_merge_find(const sk_tokenizer *t, int32_t a, int32_t b)
{
	uint64_t key = sk_pair_key(a, b);
	size_t i = (size_t)sk_mix64(key) & t->merge_mask;
	for (;;) {
		const sk_tok_merge_slot *s = &t->merge_slots[i];
		if (s->key == key)
			return s;
		if (s->key == UINT64_MAX)
			return NULL;
		i = (i + 1) & t->merge_mask;
	}
}

static int sk_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The byte of a "<0xXX>" piece (either case, as HF's ByteFallback decoder
 * accepts), or -1. */
int sk_tok_byte_value(const char *p, size_t n)
{
	if (n != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>')
		return -1;
	int h = sk_hex_digit(p[3]), l = sk_hex_digit(p[4]);
	return h < 0 || l < 0 ? -1 : h * 16 + l;
}

/* Whether p[0..n) is valid UTF-8. */
int sk_tok_valid_utf8(const char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t cl = sk_tok_utf8_len((const unsigned char *)p + i, n - i);
		if (cl == 1 && (unsigned char)p[i] >= 0x80)
			return 0;
		i += cl;
	}
	return 1;
}

static int sk_trie_child(const sk_tokenizer *t, uint32_t node, uint8_t byte, uint32_t *child)
{
	size_t i = (size_t)sk_mix64(((uint64_t)node << 8) | byte) & t->trie_mask;
	for (;;) {
		const sk_tok_trie_edge *e = &t->trie_edges[i];
		if (e->node == UINT32_MAX)
			return 0;
		if (e->node == node && e->byte == byte) {
			*child = e->child;
			return 1;
		}
		i = (i + 1) & t->trie_mask;
	}
}

static int sk_build_trie(sk_tokenizer *t)
{
	size_t total = 0;
	for (int32_t id = 0; id < t->n_vocab; id++)
		if (t->flags[id] & SK_TOKF_ADDED)
			total += t->off[id + 1] - t->off[id];
	/* total <= text_len < 4 GiB was checked, so the node count fits. */
	t->trie_mask = sk_pow2_at_least(2 * total + 2) - 1;
	t->trie_edges = malloc((t->trie_mask + 1) * sizeof *t->trie_edges);
	t->trie_token = malloc((total + 1) * sizeof *t->trie_token);
	if (!t->trie_edges || !t->trie_token)
		return sk_fail(_("%s: out of memory"), t->name);
	for (size_t i = 0; i <= t->trie_mask; i++)
		t->trie_edges[i].node = UINT32_MAX;
	t->trie_nodes = 1;
	t->trie_token[0] = -1;
	memset(t->trie_first, 0, sizeof t->trie_first);
	for (int32_t id = 0; id < t->n_vocab; id++) {
		if (!(t->flags[id] & SK_TOKF_ADDED))
			continue;
		size_t len;
		const char *p = sk_tok_piece(t, id, &len);
		if (len == 0)
			return sk_fail(_("%s: added token %ld is empty"), t->name, (long)id);
		t->trie_first[(uint8_t)p[0]] = 1;
		uint32_t node = 0;
		for (size_t k = 0; k < len; k++) {
			uint8_t b = (uint8_t)p[k];
			uint32_t child;
			if (!sk_trie_child(t, node, b, &child)) {
				child = t->trie_nodes++;
				t->trie_token[child] = -1;
				size_t i = (size_t)sk_mix64(((uint64_t)node << 8) | b) & t->trie_mask;
				while (t->trie_edges[i].node != UINT32_MAX)
					i = (i + 1) & t->trie_mask;
				t->trie_edges[i] = (sk_tok_trie_edge){ node, child, b };
			}
			node = child;
		}
		/* the same content twice: the first id keeps it, like a map would */
		if (t->trie_token[node] < 0)
			t->trie_token[node] = id;
	}
	return 0;
}

int sk_tok_index_vocab(sk_tokenizer *t)
{
	if (t->vocab_slots)
		return 0;
	const char *nm = t->name;
	if (t->off[0] != 0 || t->off[t->n_vocab] != t->text_len || t->text_len >= UINT32_MAX)
		return sk_fail(_("%s: inconsistent piece table"), nm);
	for (int32_t id = 0; id < t->n_vocab; id++) {
		if (t->off[id + 1] < t->off[id] || t->off[id + 1] - t->off[id] > SK_TOK_MAX_PIECE)
			return sk_fail(_("%s: inconsistent piece table at id %ld"), nm, (long)id);
		uint8_t f = t->flags[id];
		if (f & ~(SK_TOKF_PRESENT | SK_TOKF_SPECIAL | SK_TOKF_ADDED | SK_TOKF_BYTE | SK_TOKF_MODEL))
			return sk_fail(_("%s: bad flags for id %ld"), nm, (long)id);
		if (!(f & SK_TOKF_PRESENT) && (f || t->off[id + 1] != t->off[id]))
			return sk_fail(_("%s: bad flags for id %ld"), nm, (long)id);
	}

	/* piece -> id */
	t->vocab_mask = sk_pow2_at_least(2 * (size_t)t->n_vocab) - 1;
	t->vocab_slots = malloc((t->vocab_mask + 1) * sizeof *t->vocab_slots);
	if (!t->vocab_slots)
		return sk_fail(_("%s: out of memory"), nm);
	memset(t->vocab_slots, 0xff, (t->vocab_mask + 1) * sizeof *t->vocab_slots);
	for (int k = 0; k < 256; k++)
		t->byte_id[k] = -1;
	for (int32_t id = 0; id < t->n_vocab; id++) {
		if (!(t->flags[id] & SK_TOKF_PRESENT))
			continue;
		size_t len;
		const char *p = sk_tok_piece(t, id, &len);
		if (!sk_tok_valid_utf8(p, len))
			return sk_fail(_("%s: token %ld is not valid UTF-8"), nm, (long)id);
		if (t->flags[id] & SK_TOKF_BYTE) {
			int b = sk_tok_byte_value(p, len);
			if (b < 0)
				return sk_fail(_("%s: byte token %ld is not of the form <0xXX>"), nm, (long)id);
			/* encoding writes the byte as "<0x%02X>", as HF does */
			if (t->byte_id[b] < 0 && !(p[3] >= 'a' || p[4] >= 'a'))
				t->byte_id[b] = id;
		}
		if (sk_tok_lookup(t, p, len) >= 0)
			continue; /* duplicate piece: the first id keeps it */
		size_t i = (size_t)sk_tok_hash_bytes(p, len, 0) & t->vocab_mask;
		while (t->vocab_slots[i] >= 0)
			i = (i + 1) & t->vocab_mask;
		t->vocab_slots[i] = id;
	}

	return 0;
}

int sk_tok_finish(sk_tokenizer *t)
{
	const char *nm = t->name;
	if (sk_tok_index_vocab(t) != 0)
		return -1;
	int32_t specials[4] = { t->bos, t->eos, t->unk, t->pad };
	for (int k = 0; k < 4; k++)
		if (specials[k] < -1 || specials[k] >= t->n_vocab ||
		    (specials[k] >= 0 && !(t->flags[specials[k]] & SK_TOKF_PRESENT)))
			return sk_fail(_("%s: special token id %ld out of range"), nm, (long)specials[k]);
	if (t->n_merges > SK_TOK_MAX_MERGES)
		return sk_fail(_("%s: too many merges"), nm);
	/* the decoder options are known only now */
	t->max_decoded = 0;
	for (int32_t id = 0; id < t->n_vocab; id++) {
		char tmp[SK_TOK_MAX_PIECE];
		size_t dl = (t->flags[id] & SK_TOKF_PRESENT) ? sk_tok_decoded_piece(t, id, tmp, sizeof tmp) : 0;
		if (dl > t->max_decoded)
			t->max_decoded = dl;
	}
	/* (left, right) -> rank, result; a later duplicate wins, as in HF */
	t->merge_mask = sk_pow2_at_least(2 * (size_t)t->n_merges) - 1;
	t->merge_slots = malloc((t->merge_mask + 1) * sizeof *t->merge_slots);
	if (!t->merge_slots)
		return sk_fail(_("%s: out of memory"), nm);
	for (size_t i = 0; i <= t->merge_mask; i++)
		t->merge_slots[i].key = UINT64_MAX;
	for (uint32_t r = 0; r < t->n_merges; r++) {
		const sk_tok_merge *m = &t->merges[r];
		int32_t ids[3] = { m->left, m->right, m->result };
		for (int k = 0; k < 3; k++)
			if (ids[k] < 0 || ids[k] >= t->n_vocab || !(t->flags[ids[k]] & SK_TOKF_PRESENT))
				return sk_fail(_("%s: merge %lu refers to unknown id %ld"), nm,
				               (unsigned long)r, (long)ids[k]);
		size_t la, lb, lc;
		const char *a = sk_tok_piece(t, m->left, &la), *b = sk_tok_piece(t, m->right, &lb);
		const char *c = sk_tok_piece(t, m->result, &lc);
		if (la + lb != lc || memcmp(a, c, la) != 0 || memcmp(b, c + la, lb) != 0)
			return sk_fail(_("%s: merge %lu: result is not the concatenation of its parts"), nm,
			               (unsigned long)r);
		uint64_t key = sk_pair_key(m->left, m->right);
		size_t i = (size_t)sk_mix64(key) & t->merge_mask;
		while (t->merge_slots[i].key != UINT64_MAX && t->merge_slots[i].key != key)
			i = (i + 1) & t->merge_mask;
		t->merge_slots[i] = (sk_tok_merge_slot){ key, r, m->result };
	}
	return sk_build_trie(t);
}

/* ---- accessors ---- */

int32_t sk_tokenizer_vocab_size(const sk_tokenizer *t) { return t->n_vocab; }
int32_t sk_tokenizer_bos(const sk_tokenizer *t) { return t->bos; }
int32_t sk_tokenizer_eos(const sk_tokenizer *t) { return t->eos; }

int32_t sk_tokenizer_find(const sk_tokenizer *t, const char *piece)
{
	return sk_tok_lookup(t, piece, strlen(piece));
}

int sk_tokenizer_is_special(const sk_tokenizer *t, int32_t id)
{
	return id >= 0 && id < t->n_vocab && (t->flags[id] & SK_TOKF_SPECIAL) != 0;
}

int sk_tokenizer_add_bos_default(const sk_tokenizer *t)
{
	return (t->options & SK_TOKO_ADD_BOS) != 0 && t->bos >= 0;
}

size_t sk_tokenizer_max_piece_len(const sk_tokenizer *t) { return t->max_decoded; }

/* ---- encoding ---- */

typedef struct {
	int32_t id, prev, next; /* id -1: merged away */
} sk_sym;

typedef struct {
	uint32_t rank, pos;
} sk_cand;

typedef struct {
	char *norm;
	size_t norm_cap;
	sk_sym *syms;
	size_t syms_cap;
	sk_cand *heap;
	size_t heap_cap;
} sk_scratch;

static int sk_grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	if (need > SIZE_MAX / elem / 2)
		return sk_fail(_("text too long"));
	size_t c = need * 2;
	void *q = realloc(*p, c * elem);
	if (!q)
		return sk_fail(_("out of memory"));
	*p = q;
	*cap = c;
	return 0;
}

static inline int sk_cand_less(sk_cand a, sk_cand b)
{
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void sk_heap_push(sk_cand *h, size_t *n, sk_cand c)
{
	size_t i = (*n)++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!sk_cand_less(c, h[p]))
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = c;
}

static sk_cand sk_heap_pop(sk_cand *h, size_t *n)
{
	sk_cand top = h[0], last = h[--(*n)];
	size_t i = 0, m = *n;
	for (;;) {
		size_t l = 2 * i + 1;
		if (l >= m)
			break;
		size_t c = (l + 1 < m && sk_cand_less(h[l + 1], h[l])) ? l + 1 : l;
		if (!sk_cand_less(h[c], last))
			break;
		h[i] = h[c];
		i = c;
	}
	if (m)
		h[i] = last;
	return top;
}

static int sk_push_sym(sk_scratch *sc, size_t *nsym, int32_t id)
{
	if (sk_grow((void **)&sc->syms, &sc->syms_cap, *nsym + 1, sizeof *sc->syms) != 0)
		return -1;
	sc->syms[*nsym] = (sk_sym){ id, (int32_t)*nsym - 1, -1 };
	(*nsym)++;
	return 0;
}

/* One segment of text between added tokens: normalize, split into
 * characters (byte fallback for those not in the vocabulary), then apply
 * merges lowest rank first, leftmost first among equal ranks. */
static int sk_bpe_segment(const sk_tokenizer *t, sk_scratch *sc, const char *s, size_t n, sk_ids *out)
{
	if (n == 0)
		return 0;
	if (n > (size_t)INT32_MAX / 4)
		return sk_fail(_("text too long"));
	const char *text = s;
	size_t tn = n;
	if (t->options & SK_TOKO_SPACE_TO_META) {
		if (sk_grow((void **)&sc->norm, &sc->norm_cap, 3 * n, 1) != 0)
			return -1;
		tn = 0;
		for (size_t i = 0; i < n; i++) {
			if (s[i] == ' ') {
				memcpy(sc->norm + tn, "\xE2\x96\x81", 3);
				tn += 3;
			} else {
				sc->norm[tn++] = s[i];
			}
		}
		text = sc->norm;
	}
	if (t->options & SK_TOKO_IGNORE_MERGES) {
		int32_t id = sk_tok_lookup(t, text, tn);
		if (id >= 0 && (t->flags[id] & SK_TOKF_MODEL))
			return sk_ids_push(out, id);
	}

	size_t nsym = 0;
	int pending_unk = 0;
	for (size_t i = 0; i < tn;) {
		size_t cl = sk_tok_utf8_len((const unsigned char *)text + i, tn - i);
		int32_t id = sk_tok_lookup(t, text + i, cl);
		if (id >= 0 && !(t->flags[id] & SK_TOKF_MODEL))
			id = -1; /* only the model's own vocabulary seeds BPE */
		if (id >= 0) {
			if (sk_push_sym(sc, &nsym, id) != 0)
				return -1;
			pending_unk = 0;
		} else {
			int ok = (t->options & SK_TOKO_BYTE_FALLBACK) != 0;
			for (size_t k = 0; ok && k < cl; k++)
				ok = t->byte_id[(uint8_t)text[i + k]] >= 0;
			if (ok) {
				for (size_t k = 0; k < cl; k++)
					if (sk_push_sym(sc, &nsym, t->byte_id[(uint8_t)text[i + k]]) != 0)
						return -1;
				pending_unk = 0;
			} else {
				if (t->unk < 0)
					return sk_fail(_("%s: a character is not in the vocabulary and there is no unknown token"),
					               t->name);
				if (!(pending_unk && (t->options & SK_TOKO_FUSE_UNK)))
					if (sk_push_sym(sc, &nsym, t->unk) != 0)
						return -1;
				pending_unk = 1;
			}
		}
		i += cl;
	}
	if (nsym == 0)
		return 0;
	sc->syms[nsym - 1].next = -1;
	for (size_t i = 0; i + 1 < nsym; i++)
		sc->syms[i].next = (int32_t)i + 1;

	/* each merge adds at most two candidates: 3 * nsym bounds the heap */
	if (sk_grow((void **)&sc->heap, &sc->heap_cap, 3 * nsym + 1, sizeof *sc->heap) != 0)
		return -1;
	sk_sym *sy = sc->syms;
	size_t nh = 0;
	for (size_t i = 0; i + 1 < nsym; i++) {
		const sk_tok_merge_slot *m = sk_merge_find(t, sy[i].id, sy[i + 1].id);
		if (m)
			sk_heap_push(sc->heap, &nh, (sk_cand){ m->rank, (uint32_t)i });
	}
	while (nh > 0) {
		sk_cand c = sk_heap_pop(sc->heap, &nh);
		sk_sym *l = &sy[c.pos];
		if (l->id < 0 || l->next < 0)
			continue;
		sk_sym *r = &sy[l->next];
		const sk_tok_merge_slot *m = sk_merge_find(t, l->id, r->id);
		if (!m || m->rank != c.rank)
			continue; /* stale: this pair changed since it was queued */
		l->id = m->result;
		r->id = -1;
		l->next = r->next;
		if (l->next >= 0)
			sy[l->next].prev = (int32_t)c.pos;
		if (l->prev >= 0) {
			const sk_tok_merge_slot *pm = sk_merge_find(t, sy[l->prev].id, l->id);
			if (pm)
				sk_heap_push(sc->heap, &nh, (sk_cand){ pm->rank, (uint32_t)l->prev });
		}
		if (l->next >= 0) {
			const sk_tok_merge_slot *nm = sk_merge_find(t, l->id, sy[l->next].id);
			if (nm)
				sk_heap_push(sc->heap, &nh, (sk_cand){ nm->rank, c.pos });
		}
	}
	for (int32_t i = 0; i >= 0; i = sy[i].next)
		if (sk_ids_push(out, sy[i].id) != 0)
			return -1;
	return 0;
}

/* Longest added token starting at p, or -1; *mlen gets its length. */
static int32_t sk_match_added(const sk_tokenizer *t, const unsigned char *p, size_t n, size_t *mlen)
{
	uint32_t node = 0;
	int32_t best = -1;
	for (size_t k = 0; k < n; k++) {
		if (!sk_trie_child(t, node, p[k], &node))
			break;
		if (t->trie_token[node] >= 0) {
			best = t->trie_token[node];
			*mlen = k + 1;
		}
	}
	return best;
}

int sk_tokenizer_encode(const sk_tokenizer *t, const char *text, size_t len, int add_bos, sk_ids *out)
{
	if (!text && len)
		return sk_fail(_("no text"));
	size_t n0 = out->n;
	if (add_bos && t->bos >= 0 && sk_ids_push(out, t->bos) != 0)
		return -1;
	if (len == 0)
		return 0;
	sk_scratch sc = { 0 };
	const unsigned char *u = (const unsigned char *)text;
	size_t seg = 0;
	int rc = 0;
	/* Added tokens are found leftmost-first, longest among those starting at
	 * the same place, on the raw text (Gemma's are not normalized). */
	for (size_t i = 0; i < len && rc == 0;) {
		size_t ml = 0;
		int32_t id = t->trie_first[u[i]] ? sk_match_added(t, u + i, len - i, &ml) : -1;
		if (id < 0) {
			i++;
			continue;
		}
		rc = sk_bpe_segment(t, &sc, text + seg, i - seg, out);
		if (rc == 0)
			rc = sk_ids_push(out, id);
		i += ml;
		seg = i;
	}
	if (rc == 0)
		rc = sk_bpe_segment(t, &sc, text + seg, len - seg, out);
	free(sc.norm);
	free(sc.syms);
	free(sc.heap);
	if (rc != 0)
		out->n = n0;
	return rc;
}
