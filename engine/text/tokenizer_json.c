/* Loading a Hugging Face tokenizer.json (model type BPE) into the internal
 * representation. Only what Gemma's file uses is accepted; anything else
 * that would change the ids (another normalizer, pre-tokenizer, decoder,
 * normalized or stripped added tokens, dropout, subword affixes) is a clear
 * error rather than a silently different encoding. */
#include "engine/text/tokenizer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/text/tokenizer_model.h"

#define META "\xE2\x96\x81" /* U+2581, SentencePiece's space */

typedef struct {
	const char *s;
	size_t len;
	uint8_t flags;
} sk_jpiece;

/* Whether v is {"String": want}. */
static int sk_is_string_pattern(const json_t *v, const char *want)
{
	const json_t *s = json_object_get(v, "String");
	return json_is_object(v) && json_object_size(v) == 1 && json_is_string(s) && !strcmp(json_string_value(s), want);
}

static int sk_is_replace(const json_t *v, const char *from, const char *to)
{
	const json_t *ty = json_object_get(v, "type"), *c = json_object_get(v, "content");
	return json_is_string(ty) && !strcmp(json_string_value(ty), "Replace") &&
	       sk_is_string_pattern(json_object_get(v, "pattern"), from) && json_is_string(c) &&
	       !strcmp(json_string_value(c), to);
}

static const char *sk_type_of(const json_t *v)
{
	const json_t *ty = json_object_get(v, "type");
	return json_is_string(ty) ? json_string_value(ty) : "?";
}

static int sk_parse_normalizer(sk_tokenizer *t, const json_t *n)
{
	if (!n || json_is_null(n))
		return 0;
	if (sk_is_replace(n, " ", META)) {
		t->options |= SK_TOKO_SPACE_TO_META;
		return 0;
	}
	return sk_fail(_("%s: unsupported normalizer \"%s\""), t->name, sk_type_of(n));
}

static int sk_parse_pre_tokenizer(sk_tokenizer *t, const json_t *p)
{
	if (!p || json_is_null(p))
		return 0;
	const json_t *inv = json_object_get(p, "invert");
	/* Splitting on " " after the normalizer turned every " " into "▁" finds
	 * nothing: the whole segment is one BPE word. */
	if (!strcmp(sk_type_of(p), "Split") && sk_is_string_pattern(json_object_get(p, "pattern"), " ") &&
	    (!inv || json_is_false(inv)) && (t->options & SK_TOKO_SPACE_TO_META))
		return 0;
	return sk_fail(_("%s: unsupported pre_tokenizer \"%s\""), t->name, sk_type_of(p));
}

static int sk_parse_decoder(sk_tokenizer *t, const json_t *d)
{
	if (!d || json_is_null(d))
		return 0;
	const json_t *list = json_object_get(d, "decoders");
	if (strcmp(sk_type_of(d), "Sequence") != 0 || !json_is_array(list))
		return sk_fail(_("%s: unsupported decoder \"%s\""), t->name, sk_type_of(d));
	size_t i;
	const json_t *e;
	json_array_foreach(list, i, e) {
		const char *ty = sk_type_of(e);
		if (sk_is_replace(e, META, " "))
			t->options |= SK_TOKO_META_TO_SPACE;
		else if (strcmp(ty, "ByteFallback") != 0 && strcmp(ty, "Fuse") != 0)
			return sk_fail(_("%s: unsupported decoder step \"%s\""), t->name, ty);
	}
	return 0;
}

/* TemplateProcessing "single": [SpecialToken X, Sequence A] means <bos> first. */
static int sk_parse_post_processor(sk_tokenizer *t, const json_t *p)
{
	if (!p || json_is_null(p))
		return 0;
	const json_t *single = json_object_get(p, "single");
	if (strcmp(sk_type_of(p), "TemplateProcessing") != 0 || !json_is_array(single))
		return sk_fail(_("%s: unsupported post_processor \"%s\""), t->name, sk_type_of(p));
	size_t n = json_array_size(single);
	const json_t *last = json_array_get(single, n - 1);
	if (n < 1 || n > 2 || !json_is_object(json_object_get(last, "Sequence")))
		return sk_fail(_("%s: unsupported post_processor template"), t->name);
	if (n == 1)
		return 0;
	const json_t *st = json_object_get(json_array_get(single, 0), "SpecialToken");
	const json_t *name = json_object_get(st, "id");
	if (!json_is_string(name))
		return sk_fail(_("%s: unsupported post_processor template"), t->name);
	const json_t *spec = json_object_get(json_object_get(p, "special_tokens"), json_string_value(name));
	const json_t *ids = json_object_get(spec, "ids");
	const json_t *id = json_array_get(ids, 0);
	if (!json_is_array(ids) || json_array_size(ids) != 1 || !json_is_integer(id) ||
	    json_integer_value(id) < 0 || json_integer_value(id) >= t->n_vocab ||
	    !(t->flags[json_integer_value(id)] & SK_TOKF_PRESENT))
		return sk_fail(_("%s: post_processor: bad id for \"%s\""), t->name, json_string_value(name));
	t->bos = (int32_t)json_integer_value(id);
	t->options |= SK_TOKO_ADD_BOS;
	return 0;
}

static int sk_get_bool(sk_tokenizer *t, const json_t *obj, const char *key, int def, int *out)
{
	const json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		*out = def;
		return 0;
	}
	if (!json_is_boolean(v))
		return sk_fail(_("%s: \"%s\" must be true or false"), t->name, key);
	*out = json_is_true(v);
	return 0;
}

/* A merge as "a b" or ["a", "b"]. */
static int sk_merge_parts(const json_t *m, const char **a, size_t *la, const char **b, size_t *lb)
{
	if (json_is_string(m)) {
		const char *s = json_string_value(m);
		size_t n = json_string_length(m);
		const char *sp = memchr(s, ' ', n);
		if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp - s) - 1))
			return -1; /* exactly one space, as HF requires */
		*a = s;
		*la = (size_t)(sp - s);
		*b = sp + 1;
		*lb = n - *la - 1;
		return 0;
	}
	if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
	    json_is_string(json_array_get(m, 1))) {
		*a = json_string_value(json_array_get(m, 0));
		*la = json_string_length(json_array_get(m, 0));
		*b = json_string_value(json_array_get(m, 1));
		*lb = json_string_length(json_array_get(m, 1));
		return 0;
	}
	return -1;
}

static int32_t sk_model_id(const sk_tokenizer *t, const char *s, size_t n)
{
	int32_t id = sk_tok_lookup(t, s, n);
	return id >= 0 && (t->flags[id] & SK_TOKF_MODEL) ? id : -1;
}

static int sk_parse_merges(sk_tokenizer *t, const json_t *merges)
{
	if (!json_is_array(merges))
		return sk_fail(_("%s: model.merges must be an array"), t->name);
	size_t n = json_array_size(merges);
	if (n > SK_TOK_MAX_MERGES)
		return sk_fail(_("%s: too many merges (%zu)"), t->name, n);
	t->merges = malloc((n ? n : 1) * sizeof *t->merges);
	char *cat = malloc(2 * SK_TOK_MAX_PIECE);
	if (!t->merges || !cat) {
		free(cat);
		return sk_fail(_("%s: out of memory"), t->name);
	}
	for (size_t i = 0; i < n; i++) {
		const char *a, *b;
		size_t la, lb;
		if (sk_merge_parts(json_array_get(merges, i), &a, &la, &b, &lb) != 0) {
			free(cat);
			return sk_fail(_("%s: merge %zu is neither \"a b\" nor [\"a\", \"b\"]"), t->name, i);
		}
		int32_t ia = sk_model_id(t, a, la), ib = sk_model_id(t, b, lb), ic = -1;
		if (ia >= 0 && ib >= 0 && la + lb <= 2 * SK_TOK_MAX_PIECE) {
			memcpy(cat, a, la);
			memcpy(cat + la, b, lb);
			ic = sk_model_id(t, cat, la + lb);
		}
		if (ic < 0) {
			free(cat);
			return sk_fail(_("%s: merge %zu refers to a token not in the vocabulary"), t->name, i);
		}
		t->merges[i] = (sk_tok_merge){ ia, ib, ic };
	}
	free(cat);
	t->n_merges = (uint32_t)n;
	return 0;
}

/* Fills pieces: vocab entries and added tokens, each id once. */
static int sk_collect_pieces(const char *name, const json_t *vocab, const json_t *added, sk_jpiece **out,
                             int32_t *n_out)
{
	const char *key;
	const json_t *v;
	int64_t max_id = -1;
	size_t count = json_object_size(vocab) + json_array_size(added);
	json_object_foreach((json_t *)vocab, key, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= SK_TOK_MAX_VOCAB)
			return sk_fail(_("%s: vocab entry \"%.40s\" has a bad id"), name, key);
		if (json_integer_value(v) > max_id)
			max_id = json_integer_value(v);
	}
	size_t i;
	json_array_foreach(added, i, v) {
		const json_t *id = json_object_get(v, "id"), *c = json_object_get(v, "content");
		if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= SK_TOK_MAX_VOCAB)
			return sk_fail(_("%s: added token %zu has a bad id"), name, i);
		if (!json_is_string(c) || json_string_length(c) == 0)
			return sk_fail(_("%s: added token %zu has no content"), name, i);
		if (json_integer_value(id) > max_id)
			max_id = json_integer_value(id);
	}
	if (max_id < 0)
		return sk_fail(_("%s: empty vocabulary"), name);
	/* ids must be nearly dense: a few entries cannot claim millions of slots */
	if ((uint64_t)max_id >= 2 * (uint64_t)count + 1024)
		return sk_fail(_("%s: token ids are not contiguous (largest %lld for %zu tokens)"), name,
		               (long long)max_id, count);
	int32_t n = (int32_t)max_id + 1;
	sk_jpiece *p = calloc((size_t)n, sizeof *p);
	if (!p)
		return sk_fail(_("%s: out of memory"), name);
	json_object_foreach((json_t *)vocab, key, v) {
		int32_t id = (int32_t)json_integer_value(v);
		if (p[id].flags) {
			free(p);
			return sk_fail(_("%s: id %ld is given to two vocab entries"), name, (long)id);
		}
		p[id] = (sk_jpiece){ key, strlen(key), SK_TOKF_PRESENT | SK_TOKF_MODEL };
	}
	json_array_foreach(added, i, v) {
		int32_t id = (int32_t)json_integer_value(json_object_get(v, "id"));
		const json_t *c = json_object_get(v, "content");
		int special = json_is_true(json_object_get(v, "special"));
		static const char *const unsupported[] = { "normalized", "lstrip", "rstrip", "single_word" };
		for (size_t k = 0; k < 4; k++) {
			const json_t *f = json_object_get(v, unsupported[k]);
			if (f && !json_is_false(f)) {
				free(p);
				return sk_fail(_("%s: added token %zu: \"%s\" is not supported"), name, i, unsupported[k]);
			}
		}
		const char *s = json_string_value(c);
		size_t len = json_string_length(c);
		if (p[id].flags & SK_TOKF_ADDED) {
			free(p);
			return sk_fail(_("%s: id %ld is given to two added tokens"), name, (long)id);
		}
		if (p[id].flags && (p[id].len != len || memcmp(p[id].s, s, len) != 0)) {
			free(p);
			return sk_fail(_("%s: added token \"%.40s\" has id %ld, which the vocab gives to another token"),
			               name, s, (long)id);
		}
		if (!p[id].flags)
			p[id] = (sk_jpiece){ s, len, SK_TOKF_PRESENT };
		p[id].flags |= SK_TOKF_ADDED | (special ? SK_TOKF_SPECIAL : 0);
	}
	*out = p;
	*n_out = n;
	return 0;
}

static sk_tokenizer *sk_build(const json_t *root, const char *name)
{
	if (!json_is_object(root)) {
		sk_fail(_("%s: not a JSON object"), name);
		return NULL;
	}
	const json_t *model = json_object_get(root, "model");
	if (!json_is_object(model)) {
		sk_fail(_("%s: no \"model\" object"), name);
		return NULL;
	}
	const json_t *ty = json_object_get(model, "type");
	if (ty && !(json_is_string(ty) && !strcmp(json_string_value(ty), "BPE"))) {
		sk_fail(_("%s: model type \"%s\" is not supported (only BPE)"), name,
		        json_is_string(ty) ? json_string_value(ty) : "?");
		return NULL;
	}
	const json_t *vocab = json_object_get(model, "vocab");
	if (!json_is_object(vocab)) {
		sk_fail(_("%s: model.vocab must be an object"), name);
		return NULL;
	}
	const json_t *added = json_object_get(root, "added_tokens");
	if (added && !json_is_null(added) && !json_is_array(added)) {
		sk_fail(_("%s: added_tokens must be an array"), name);
		return NULL;
	}
	static const char *const must_be_null[] = { "dropout", "continuing_subword_prefix", "end_of_word_suffix" };
	for (size_t k = 0; k < 3; k++) {
		const json_t *v = json_object_get(model, must_be_null[k]);
		if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0)) {
			sk_fail(_("%s: model.%s is not supported"), name, must_be_null[k]);
			return NULL;
		}
	}

	sk_jpiece *p = NULL;
	int32_t n = 0;
	if (sk_collect_pieces(name, vocab, json_is_array(added) ? added : NULL, &p, &n) != 0)
		return NULL;
	sk_tokenizer *t = sk_tok_alloc(n, name);
	if (!t) {
		free(p);
		return NULL;
	}
	size_t total = 0;
	for (int32_t id = 0; id < n; id++) {
		if (p[id].len > SK_TOK_MAX_PIECE) {
			sk_fail(_("%s: token %ld is too long"), name, (long)id);
			goto fail;
		}
		total += p[id].len;
	}
	t->text = malloc(total ? total : 1);
	if (!t->text) {
		sk_fail(_("%s: out of memory"), name);
		goto fail;
	}
	for (int32_t id = 0; id < n; id++) {
		if (p[id].len)
			memcpy(t->text + t->off[id], p[id].s, p[id].len);
		t->off[id + 1] = t->off[id] + (uint32_t)p[id].len;
		t->flags[id] = p[id].flags;
		/* HF's ByteFallback decoder goes by the text, whatever the token */
		if (p[id].flags && sk_tok_byte_value(p[id].s, p[id].len) >= 0)
			t->flags[id] |= SK_TOKF_BYTE;
	}
	t->text_len = total;
	free(p);
	p = NULL;
	if (sk_tok_index_vocab(t) != 0)
		goto fail;

	int b;
	if (sk_get_bool(t, model, "byte_fallback", 0, &b) != 0)
		goto fail;
	t->options |= b ? SK_TOKO_BYTE_FALLBACK : 0;
	if (sk_get_bool(t, model, "fuse_unk", 0, &b) != 0)
		goto fail;
	t->options |= b ? SK_TOKO_FUSE_UNK : 0;
	if (sk_get_bool(t, model, "ignore_merges", 0, &b) != 0)
		goto fail;
	t->options |= b ? SK_TOKO_IGNORE_MERGES : 0;
	const json_t *unk = json_object_get(model, "unk_token");
	if (unk && !json_is_null(unk) && !json_is_string(unk)) {
		sk_fail(_("%s: model.unk_token must be a string"), name);
		goto fail;
	}
	if (json_is_string(unk))
		t->unk = sk_model_id(t, json_string_value(unk), json_string_length(unk));
	t->eos = sk_tokenizer_find(t, "<eos>");
	if (t->eos < 0)
		t->eos = sk_tokenizer_find(t, "</s>");
	t->pad = sk_tokenizer_find(t, "<pad>");
	t->bos = sk_tokenizer_find(t, "<bos>");
	if (t->bos < 0)
		t->bos = sk_tokenizer_find(t, "<s>");

	if (sk_parse_normalizer(t, json_object_get(root, "normalizer")) != 0 ||
	    sk_parse_pre_tokenizer(t, json_object_get(root, "pre_tokenizer")) != 0 ||
	    sk_parse_decoder(t, json_object_get(root, "decoder")) != 0 ||
	    sk_parse_post_processor(t, json_object_get(root, "post_processor")) != 0 ||
	    sk_parse_merges(t, json_object_get(model, "merges")) != 0 || sk_tok_finish(t) != 0)
		goto fail;
	return t;
fail:
	free(p);
	sk_tokenizer_free(t);
	return NULL;
}

sk_tokenizer *sk_tok_from_json(const char *json, size_t len, const char *name)
{
	if (!name)
		name = "tokenizer.json";
	json_error_t err;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
	if (!root) {
		sk_fail(_("%s:%d: invalid JSON: %s"), name, err.line, err.text);
		return NULL;
	}
	sk_tokenizer *t = sk_build(root, name);
	json_decref(root);
	return t;
}

sk_tokenizer *sk_tokenizer_load_mem(const char *json, size_t len, const char *name)
{
	return sk_tok_from_json(json, len, name);
}
