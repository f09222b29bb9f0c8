/* Building the tokenizer from a GGUF's tokenizer.ggml.* vocabulary
 * ("llama" = SentencePiece BPE: tokens, scores, token types, no merges).
 *
 * The merges are derived from the scores so that encoding equals Gemma's
 * tokenizer.json exactly: every split of a token into two tokens is a
 * merge, ordered by the merged token's score (highest first; control and
 * user-defined tokens count as score 0, as in the SentencePiece model,
 * where this GGUF stores -1000), then by the left part's length in
 * characters (longest first), the right part's likewise, then by merged,
 * left and right id. This reproduces the 514,906 merges of Gemma 3's
 * tokenizer.json in the same order (checked with a script over the whole
 * vocabulary), so the BPE ranks are the same. */
#include "engine/text/tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/format/gguf.h"
#include "engine/i18n.h"
#include "engine/text/tokenizer_model.h"

enum { SK_GT_NORMAL = 1, SK_GT_UNKNOWN = 2, SK_GT_CONTROL = 3, SK_GT_USER = 4, SK_GT_UNUSED = 5, SK_GT_BYTE = 6 };

typedef struct {
	double score;
	uint32_t lenl, lenr;
	int32_t z, l, r;
} sk_cand_merge;

static int sk_cmp_merge(const void *pa, const void *pb)
{
	const sk_cand_merge *a = pa, *b = pb;
	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	if (a->lenl != b->lenl)
		return a->lenl > b->lenl ? -1 : 1;
	if (a->lenr != b->lenr)
		return a->lenr > b->lenr ? -1 : 1;
	if (a->z != b->z)
		return a->z < b->z ? -1 : 1;
	if (a->l != b->l)
		return a->l < b->l ? -1 : 1;
	return (a->r > b->r) - (a->r < b->r);
}

static size_t sk_nchars(const char *p, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; c++)
		i += sk_tok_utf8_len((const unsigned char *)p + i, n - i);
	return c;
}

static int sk_derive_merges(sk_tokenizer *t, const double *score)
{
	size_t cap = 1024, n = 0;
	sk_cand_merge *c = malloc(cap * sizeof *c);
	if (!c)
		return sk_fail(_("%s: out of memory"), t->name);
	for (int32_t z = 0; z < t->n_vocab; z++) {
		size_t len;
		const char *p = sk_tok_piece(t, z, &len);
		size_t lchars = 0, total = 0;
		if (len < 2)
			continue;
		for (size_t k = 0; k < len;) {
			k += sk_tok_utf8_len((const unsigned char *)p + k, len - k);
			lchars++;
			if (k >= len)
				break;
			int32_t l = sk_tok_lookup(t, p, k);
			if (l < 0)
				continue;
			int32_t r = sk_tok_lookup(t, p + k, len - k);
			if (r < 0)
				continue;
			if (!total)
				total = sk_nchars(p, len);
			if (n == cap) {
				if (cap >= SK_TOK_MAX_MERGES) {
					free(c);
					return sk_fail(_("%s: too many merges"), t->name);
				}
				sk_cand_merge *q = realloc(c, 2 * cap * sizeof *c);
				if (!q) {
					free(c);
					return sk_fail(_("%s: out of memory"), t->name);
				}
				c = q;
				cap *= 2;
			}
			c[n++] = (sk_cand_merge){ score[z], (uint32_t)lchars, (uint32_t)(total - lchars), z, l, r };
		}
	}
	qsort(c, n, sizeof *c, sk_cmp_merge);
	t->merges = malloc((n ? n : 1) * sizeof *t->merges);
	if (!t->merges) {
		free(c);
		return sk_fail(_("%s: out of memory"), t->name);
	}
	for (size_t i = 0; i < n; i++)
		t->merges[i] = (sk_tok_merge){ c[i].l, c[i].r, c[i].z };
	t->n_merges = (uint32_t)n;
	free(c);
	return 0;
}

/* An optional id: -1 when the key is absent; an error when out of range. */
static int sk_opt_id(const sk_gguf *g, const char *key, int32_t n, const char *name, int32_t *out)
{
	*out = -1;
	if (!sk_gguf_find(g, key))
		return 0;
	uint32_t v;
	if (sk_gguf_get_u32(g, key, &v) != 0 || v >= (uint32_t)n)
		return sk_fail(_("%s: %s is not a token id"), name, key);
	*out = (int32_t)v;
	return 0;
}

static const sk_gguf_kv *sk_num_array(const sk_gguf *g, const char *key, uint64_t n, const char *name, int required)
{
	const sk_gguf_kv *kv = sk_gguf_find(g, key);
	if (!kv) {
		if (required)
			sk_fail(_("%s: no %s"), name, key);
		return NULL;
	}
	if (kv->type != SK_GGUF_ARRAY || kv->arr_count != n || kv->arr_type == SK_GGUF_STRING ||
	    kv->arr_type == SK_GGUF_ARRAY) {
		sk_fail(_("%s: %s must be a number array of %llu entries"), name, key, (unsigned long long)n);
		return NULL;
	}
	return kv;
}

sk_tokenizer *sk_tokenizer_from_gguf(const sk_gguf *g, const char *name)
{
	if (!name)
		name = "gguf";
	const char *model;
	size_t model_len;
	if (sk_gguf_get_str(g, "tokenizer.ggml.model", &model, &model_len) != 0) {
		sk_fail(_("%s: no tokenizer.ggml.model"), name);
		return NULL;
	}
	if (model_len != 5 || memcmp(model, "llama", 5) != 0) {
		sk_fail(_("%s: tokenizer model \"%.*s\" is not supported (only \"llama\")"), name,
		        (int)(model_len > 40 ? 40 : model_len), model);
		return NULL;
	}
	int b;
	if (sk_gguf_find(g, "tokenizer.ggml.add_space_prefix") &&
	    (sk_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b) != 0 || b)) {
		sk_fail(_("%s: tokenizer.ggml.add_space_prefix is not supported"), name);
		return NULL;
	}
	const sk_gguf_kv *tokens = sk_gguf_find(g, "tokenizer.ggml.tokens");
	if (!tokens || tokens->type != SK_GGUF_ARRAY || tokens->arr_type != SK_GGUF_STRING || tokens->arr_count < 1 ||
	    tokens->arr_count > SK_TOK_MAX_VOCAB) {
		sk_fail(_("%s: tokenizer.ggml.tokens must be a string array of 1 to %d entries"), name, SK_TOK_MAX_VOCAB);
		return NULL;
	}
	int32_t n = (int32_t)tokens->arr_count;
	const sk_gguf_kv *scores = sk_num_array(g, "tokenizer.ggml.scores", (uint64_t)n, name, 1);
	if (!scores)
		return NULL;
	const sk_gguf_kv *types = sk_num_array(g, "tokenizer.ggml.token_type", (uint64_t)n, name, 0);
	if (!types && sk_gguf_find(g, "tokenizer.ggml.token_type"))
		return NULL;

	sk_tokenizer *t = sk_tok_alloc(n, name);
	double *score = malloc((size_t)n * sizeof *score);
	if (!t || !score)
		goto oom;
	/* pass 1: lengths with " " widened to "▁" (Gemma's GGUF writes its
	 * whitespace-run tokens with spaces; tokenizer.json with "▁") */
	size_t total = 0;
	for (int32_t i = 0; i < n; i++) {
		const char *s;
		size_t len;
		if (sk_gguf_arr_str(g, tokens, (uint64_t)i, &s, &len) != 0)
			goto fail;
		if (len > SK_TOK_MAX_PIECE) {
			sk_fail(_("%s: token %ld is too long"), name, (long)i);
			goto fail;
		}
		size_t sp = 0;
		for (size_t k = 0; k < len; k++)
			sp += s[k] == ' ';
		total += len + 2 * sp;
		if (total >= UINT32_MAX) {
			sk_fail(_("%s: vocabulary too large"), name);
			goto fail;
		}
		t->off[i + 1] = (uint32_t)total;
	}
	t->text = malloc(total ? total : 1);
	if (!t->text)
		goto oom;
	t->text_len = total;
	for (int32_t i = 0; i < n; i++) {
		const char *s;
		size_t len;
		double ty = SK_GT_NORMAL, sc;
		if (sk_gguf_arr_str(g, tokens, (uint64_t)i, &s, &len) != 0 ||
		    sk_gguf_arr_f64(scores, (uint64_t)i, &sc) != 0 || (types && sk_gguf_arr_f64(types, (uint64_t)i, &ty) != 0))
			goto fail;
		char *o = t->text + t->off[i];
		for (size_t k = 0; k < len; k++) {
			if (s[k] == ' ') {
				memcpy(o, "\xE2\x96\x81", 3);
				o += 3;
			} else {
				*o++ = s[k];
			}
		}
		uint8_t f = SK_TOKF_PRESENT | SK_TOKF_MODEL;
		if (ty == SK_GT_CONTROL)
			f |= SK_TOKF_ADDED | SK_TOKF_SPECIAL;
		else if (ty == SK_GT_USER)
			f |= SK_TOKF_ADDED;
		else if (ty == SK_GT_BYTE)
			f |= SK_TOKF_BYTE;
		else if (ty != SK_GT_NORMAL && ty != SK_GT_UNKNOWN && ty != SK_GT_UNUSED) {
			sk_fail(_("%s: token %ld has an unknown type"), name, (long)i);
			goto fail;
		}
		t->flags[i] = f;
		if (isnan(sc))
			sc = -INFINITY;
		score[i] = (ty == SK_GT_NORMAL || ty == SK_GT_BYTE) ? sc : 0.0;
	}
	t->options = SK_TOKO_SPACE_TO_META | SK_TOKO_BYTE_FALLBACK | SK_TOKO_FUSE_UNK | SK_TOKO_META_TO_SPACE;
	if (sk_opt_id(g, "tokenizer.ggml.bos_token_id", n, name, &t->bos) != 0 ||
	    sk_opt_id(g, "tokenizer.ggml.eos_token_id", n, name, &t->eos) != 0 ||
	    sk_opt_id(g, "tokenizer.ggml.unknown_token_id", n, name, &t->unk) != 0 ||
	    sk_opt_id(g, "tokenizer.ggml.padding_token_id", n, name, &t->pad) != 0)
		goto fail;
	b = 1; /* SentencePiece models add <bos> unless told otherwise */
	if (sk_gguf_find(g, "tokenizer.ggml.add_bos_token") && sk_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b) != 0)
		goto fail;
	if (b)
		t->options |= SK_TOKO_ADD_BOS;
	if (sk_tok_index_vocab(t) != 0 || sk_derive_merges(t, score) != 0 || sk_tok_finish(t) != 0)
		goto fail;
	free(score);
	return t;
oom:
	sk_fail(_("%s: out of memory"), name);
fail:
	free(score);
	sk_tokenizer_free(t);
	return NULL;
}
