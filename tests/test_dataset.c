/* Dataset loading and batching: the three row formats, loss masks token by
 * token against Hugging Face (tests/fixtures/dataset/reference.jsonl from
 * make_reference.py, real Gemma tokenizer: SK_TOKENIZER_JSON or the default
 * GGUF via SK_DEFAULT_MODEL, skipped when neither), truncation, padding,
 * packing, shuffle, eval split, resuming, bad rows under both policies,
 * whole-file errors, and the Persian sample dataset. Cases that only need
 * some tokenizer use the tiny one under tests/fixtures/hf/tiny-gemma3. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "engine/train/batcher.h"
#include "engine/train/dataset.h"
#include "engine/error.h"
#include "tests/test.h"

static sk_tokenizer *g_real, *g_tiny;
static char g_real_name[4096];

static void load_tokenizers(void)
{
	g_tiny = sk_tokenizer_load(sk_test_path("tests/fixtures/hf/tiny-gemma3/tokenizer.json"));
	if (!g_tiny) fprintf(stderr, "tiny tokenizer: %s\n", sk_error());
	const char *p = getenv("SK_TOKENIZER_JSON");
	if (p && *p && access(p, R_OK) == 0) {
		g_real = sk_tokenizer_load(p);
	} else if ((p = getenv("SK_DEFAULT_MODEL")) && *p && access(p, R_OK) == 0) {
		g_real = sk_tokenizer_open(p);
	} else {
		return;
	}
	snprintf(g_real_name, sizeof g_real_name, "%s", p);
	if (!g_real) fprintf(stderr, "tokenizer %s: %s\n", p, sk_error());
}

static char g_fx[4096];
static const char *fx(const char *name)
{
	snprintf(g_fx, sizeof g_fx, "%s/tests/fixtures/dataset/%s", sk_test_srcdir(), name);
	return g_fx;
}

static sk_dataset *load(const char *name, const sk_tokenizer *tok, sk_loss_on loss, sk_bad_rows pol,
                        size_t max_len)
{
	sk_dataset_opts o;
	sk_dataset_opts_init(&o);
	o.loss_on = loss;
	o.bad_rows = pol;
	o.max_len = max_len;
	return sk_dataset_load(fx(name), tok, &o);
}

/* ---- options and rows ---- */

TEST(parse_options)
{
	sk_loss_on l = SK_LOSS_ALL;
	sk_bad_rows b = SK_BAD_ROWS_SKIP;
	CHECK(sk_loss_on_parse("responses", &l) == 0 && l == SK_LOSS_RESPONSES);
	CHECK(sk_loss_on_parse("all", &l) == 0 && l == SK_LOSS_ALL);
	CHECK(sk_loss_on_parse("prompt", &l) == -1 && strstr(sk_error(), "prompt"));
	CHECK(sk_bad_rows_parse("fail", &b) == 0 && b == SK_BAD_ROWS_FAIL);
	CHECK(sk_bad_rows_parse("skip", &b) == 0 && b == SK_BAD_ROWS_SKIP);
	CHECK(sk_bad_rows_parse(NULL, &b) == -1);
}

TEST(row_formats)
{
	sk_dataset_row r;
	const char *m = "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"u\"},"
	                "{\"role\":\"model\",\"content\":\"a\"}]}";
	CHECK(sk_dataset_row_parse(m, strlen(m), &r) == 0);
	CHECK(r.format == SK_ROW_MESSAGES && r.nmsgs == 3);
	CHECK(r.nmsgs == 3 && r.msgs[0].role == SK_CHAT_SYSTEM && r.msgs[2].role == SK_CHAT_ASSISTANT &&
	      !strcmp(r.msgs[1].content, "u"));
	sk_dataset_row_free(&r);
	const char *s = "{\"conversations\":[{\"from\":\"human\",\"value\":\"u\"},{\"from\":\"gpt\",\"value\":\"a\"}]}";
	CHECK(sk_dataset_row_parse(s, strlen(s), &r) == 0);
	CHECK(r.format == SK_ROW_SHAREGPT && r.nmsgs == 2);
	CHECK(r.nmsgs == 2 && r.msgs[0].role == SK_CHAT_USER && r.msgs[1].role == SK_CHAT_ASSISTANT &&
	      !strcmp(r.msgs[1].content, "a"));
	sk_dataset_row_free(&r);
	const char *t = "{\"text\":\"hello\",\"id\":1}";
	CHECK(sk_dataset_row_parse(t, strlen(t), &r) == 0);
	CHECK(r.format == SK_ROW_TEXT && r.text_len == 5 && !memcmp(r.text, "hello", 5));
	sk_dataset_row_free(&r);
	/* A NUL inside a string would be cut by the C-string template. */
	const char *z = "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"},{\"role\":\"assistant\",\"content\":\"c\"}]}";
	CHECK(sk_dataset_row_parse(z, strlen(z), &r) == -1 && strstr(sk_error(), "NUL"));
}

/* ---- masks against Hugging Face, token by token ---- */

static void check_against_reference(sk_loss_on loss)
{
	if (!g_real) {
		SKIP("no real tokenizer (set SK_TOKENIZER_JSON or SK_DEFAULT_MODEL)");
		return;
	}
	FILE *f = fopen(fx("reference.jsonl"), "r");
	CHECK(f != NULL);
	if (!f) return;
	char line[65536];
	const char *cur = NULL;
	sk_dataset *ds = NULL;
	size_t nref = 0;
	while (fgets(line, sizeof line, f)) {
		json_t *j = json_loads(line, 0, NULL);
		CHECK(j != NULL);
		if (!j) break;
		const char *file = json_string_value(json_object_get(j, "file"));
		size_t ln = (size_t)json_integer_value(json_object_get(j, "line"));
		if (!cur || strcmp(cur, file)) {
			sk_dataset_free(ds);
			ds = load(file, g_real, loss, SK_BAD_ROWS_FAIL, 0);
			CHECK_MSG(ds != NULL, "%s", sk_error());
			static char keep[256];
			snprintf(keep, sizeof keep, "%s", file);
			cur = keep;
		}
		size_t k = 0;
		while (ds && k < ds->n && ds->ex[k].line != ln) k++;
		CHECK_MSG(ds && k < ds->n, "%s line %zu not loaded", file, ln);
		if (ds && k < ds->n) {
			const int32_t *ids;
			const uint8_t *tg;
			size_t n = sk_dataset_example(ds, k, &ids, &tg);
			json_t *rid = json_object_get(j, "ids");
			int text = !strcmp(file, "text.jsonl");
			json_t *rm = json_object_get(j, loss == SK_LOSS_ALL || text ? "all" : "responses");
			CHECK_EQ_INT(n, json_array_size(rid));
			for (size_t i = 0; i < n && i < json_array_size(rid); i++) {
				CHECK_MSG(ids[i] == json_integer_value(json_array_get(rid, i)), "%s:%zu id %zu", file, ln, i);
				CHECK_MSG(tg[i] == json_integer_value(json_array_get(rm, i)), "%s:%zu mask %zu: %d", file,
				          ln, i, tg[i]);
			}
			nref++;
		}
		json_decref(j);
	}
	fclose(f);
	sk_dataset_free(ds);
	CHECK_EQ_INT(nref, 7);
}

TEST(masks_all_match_reference) { check_against_reference(SK_LOSS_ALL); }
TEST(masks_responses_match_reference) { check_against_reference(SK_LOSS_RESPONSES); }

/* The same on one conversation spelled out: which positions are targets. */
TEST(masks_by_hand)
{
	if (!g_real) {
		SKIP("no real tokenizer (set SK_TOKENIZER_JSON or SK_DEFAULT_MODEL)");
		return;
	}
	sk_dataset *all = load("messages.jsonl", g_real, SK_LOSS_ALL, SK_BAD_ROWS_FAIL, 0);
	sk_dataset *resp = load("messages.jsonl", g_real, SK_LOSS_RESPONSES, SK_BAD_ROWS_FAIL, 0);
	CHECK(all && resp);
	if (!all || !resp) goto out;
	const int32_t *ids, *ids2;
	const uint8_t *ta, *tr;
	/* Line 3: "What is 2+2?" / "4". */
	size_t n = sk_dataset_example(all, 2, &ids, &ta);
	size_t n2 = sk_dataset_example(resp, 2, &ids2, &tr);
	CHECK_EQ_INT(n, 19);
	CHECK_EQ_INT(n2, 19);
	if (n != 19 || n2 != 19) goto out;
	int32_t bos = sk_tokenizer_bos(g_real), eot = sk_tokenizer_find(g_real, "<end_of_turn>");
	int32_t nl = sk_tokenizer_find(g_real, "\n");
	/* <bos> <sot> user \n What ▁is ▁ 2 + 2 ? <eot> \n <sot> model \n 4 <eot> \n */
	CHECK(ids[0] == bos && ids[17] == eot && ids[11] == eot && ids[18] == nl);
	for (size_t i = 0; i < n; i++) {
		CHECK_MSG(ta[i] == (i > 0), "all: %zu", i);
		/* Only "4" and its <end_of_turn> are learnt from. */
		CHECK_MSG(tr[i] == (i == 16 || i == 17), "responses: %zu", i);
	}
	CHECK_EQ_INT(all->ex[2].ntargets, 18);
	CHECK_EQ_INT(resp->ex[2].ntargets, 2);
out:
	sk_dataset_free(all);
	sk_dataset_free(resp);
}

/* ---- formats through the loader (tiny tokenizer) ---- */

TEST(sharegpt_renders_like_messages)
{
	sk_dataset *m = load("messages.jsonl", g_tiny, SK_LOSS_RESPONSES, SK_BAD_ROWS_FAIL, 0);
	sk_dataset *s = load("sharegpt.jsonl", g_tiny, SK_LOSS_RESPONSES, SK_BAD_ROWS_FAIL, 0);
	CHECK_MSG(m && s, "%s", sk_error());
	if (m && s) {
		CHECK_EQ_INT(m->n, 3);
		CHECK_EQ_INT(s->n, 2);
		CHECK_EQ_INT(s->stats.fmt_sharegpt, 2);
		CHECK_EQ_INT(m->stats.fmt_messages, 3);
		for (size_t k = 0; k < 2; k++) {
			const int32_t *a, *b;
			const uint8_t *ta, *tb;
			size_t na = sk_dataset_example(m, k, &a, &ta), nb = sk_dataset_example(s, k, &b, &tb);
			CHECK_EQ_INT(na, nb);
			CHECK(na == nb && !memcmp(a, b, na * sizeof *a) && !memcmp(ta, tb, na));
		}
		CHECK_EQ_INT(m->stats.turns, 2 + 5 + 2);
		CHECK_EQ_INT(m->stats.system_msgs, 1);
	}
	sk_dataset_free(m);
	sk_dataset_free(s);
}

TEST(text_rows_bos_all_trainable)
{
	sk_dataset *d = load("text.jsonl", g_tiny, SK_LOSS_RESPONSES, SK_BAD_ROWS_FAIL, 0);
	CHECK_MSG(d != NULL, "%s", sk_error());
	if (!d) return;
	CHECK_EQ_INT(d->n, 2);
	CHECK_EQ_INT(d->stats.fmt_text, 2);
	for (size_t k = 0; k < d->n; k++) {
		const int32_t *ids;
		const uint8_t *t;
		size_t n = sk_dataset_example(d, k, &ids, &t);
		CHECK(n > 3);
		CHECK(ids[0] == sk_tokenizer_bos(g_tiny));
		for (size_t i = 0; i < n; i++) CHECK(t[i] == (i > 0));
	}
	sk_dataset_free(d);
}

TEST(bom_and_crlf)
{
	sk_dataset *d = load("crlf_bom.jsonl", g_tiny, SK_LOSS_ALL, SK_BAD_ROWS_FAIL, 0);
	CHECK_MSG(d != NULL, "%s", sk_error());
	if (!d) return;
	CHECK_EQ_INT(d->n, 2);
	/* The "\r" is not part of the row: the text row ends in "b". */
	const int32_t *ids;
	size_t n = sk_dataset_example(d, 0, &ids, NULL);
	char *s = NULL;
	CHECK(sk_tokenizer_decode(g_tiny, ids, n, 1, &s, NULL) == 0 && s && !strcmp(s, "a b"));
	free(s);
	sk_dataset_free(d);
}

/* ---- truncation ---- */

TEST(truncation_keeps_start)
{
	sk_dataset *full = load("messages.jsonl", g_tiny, SK_LOSS_ALL, SK_BAD_ROWS_FAIL, 0);
	sk_dataset *cut = load("messages.jsonl", g_tiny, SK_LOSS_ALL, SK_BAD_ROWS_FAIL, 12);
	CHECK(full && cut);
	if (full && cut) {
		CHECK_EQ_INT(cut->n, full->n);
		size_t ntr = 0;
		for (size_t k = 0; k < full->n && k < cut->n; k++) {
			const int32_t *a, *b;
			const uint8_t *ta, *tb;
			size_t na = sk_dataset_example(full, k, &a, &ta), nb = sk_dataset_example(cut, k, &b, &tb);
			CHECK_EQ_INT(nb, na < 12 ? na : 12);
			CHECK(!memcmp(a, b, nb * sizeof *a) && !memcmp(ta, tb, nb));
			CHECK_EQ_INT(cut->ex[k].full_n, na);
			ntr += na > 12;
		}
		CHECK(ntr > 0);
		CHECK_EQ_INT(cut->stats.truncated, ntr);
		CHECK_EQ_INT(cut->stats.max_len, 12);
		CHECK_EQ_INT(cut->stats.max_full_len, full->stats.max_len);
	}
	sk_dataset_free(full);
	sk_dataset_free(cut);
	/* Responses mode: a cut that leaves no response drops the example. */
	sk_dataset *r = load("messages.jsonl", g_tiny, SK_LOSS_RESPONSES, SK_BAD_ROWS_FAIL, 8);
	CHECK(r == NULL && strstr(sk_error(), "no example has a target"));
	sk_dataset_free(r);
}

/* ---- batching on synthetic examples ---- */

/* Example k has length lens[k] and ids 1000*(k+1) + i (never the pad id);
 * its mask is 1 on odd positions so masks are not all ones. */
static sk_dataset *synthetic(const size_t *lens, size_t n)
{
	sk_dataset *d = sk_dataset_new("synthetic");
	int32_t ids[256];
	uint8_t t[256];
	for (size_t k = 0; k < n; k++) {
		for (size_t i = 0; i < lens[k]; i++) {
			ids[i] = (int32_t)(1000 * (k + 1) + i);
			t[i] = i % 2;
		}
		CHECK(sk_dataset_add(d, ids, t, lens[k], k + 1) == 0);
	}
	return d;
}

TEST(dataset_add_and_stats)
{
	sk_dataset *d = sk_dataset_new("x");
	int32_t ids[4] = {5, 6, 7, 8};
	uint8_t t[4] = {1, 0, 1, 1};
	CHECK(sk_dataset_add(d, ids, NULL, 4, 1) == 0);
	CHECK(sk_dataset_add(d, ids, t, 3, 2) == 0);
	const uint8_t *m;
	sk_dataset_example(d, 0, NULL, &m);
	CHECK(m[0] == 0 && m[1] == 1 && m[2] == 1 && m[3] == 1);
	sk_dataset_example(d, 1, NULL, &m);
	CHECK(m[0] == 0 && m[1] == 0 && m[2] == 1); /* the first token is never a target */
	CHECK_EQ_INT(d->stats.tokens, 7);
	CHECK_EQ_INT(d->stats.targets, 4);
	CHECK_EQ_INT(d->stats.min_len, 3);
	CHECK_EQ_INT(d->stats.max_len, 4);
	CHECK_NEAR(d->stats.mean_len, 3.5, 1e-12);
	char line[256];
	sk_dataset_stats_line(d, line, sizeof line);
	CHECK_MSG(strstr(line, "2 conversations") && strstr(line, "7 tokens (4 targets)"), "%s", line);
	CHECK(sk_dataset_example(d, 2, NULL, NULL) == 0);
	sk_dataset_free(d);
}

TEST(padding_per_batch)
{
	size_t lens[] = {3, 5, 2, 4};
	sk_dataset *d = synthetic(lens, 4);
	sk_batcher_opts o;
	sk_batcher_opts_init(&o);
	o.batch_size = 3;
	o.shuffle = 0;
	o.pad_id = 0;
	sk_batcher *b = sk_batcher_new(d, NULL, 0, &o);
	sk_batch bt;
	CHECK(sk_batcher_next(b, &bt) == 1);
	CHECK_EQ_INT(bt.rows, 3);
	CHECK_EQ_INT(bt.cols, 5); /* the longest row of this batch */
	for (size_t r = 0; r < bt.rows; r++) {
		CHECK_EQ_INT(bt.len[r], lens[r]);
		for (size_t i = 0; i < bt.cols; i++) {
			size_t c = r * bt.cols + i;
			if (i < lens[r]) {
				CHECK(bt.ids[c] == (int32_t)(1000 * (r + 1) + i) && bt.target[c] == i % 2 && bt.seg[c] == 0);
			} else {
				CHECK(bt.ids[c] == 0 && bt.target[c] == 0 && bt.seg[c] == -1);
			}
		}
	}
	CHECK_EQ_INT(bt.tokens, 10);
	CHECK_EQ_INT(bt.targets, 1 + 2 + 1);
	/* The last batch is short, padded to its own longest row. */
	CHECK(sk_batcher_next(b, &bt) == 1);
	CHECK_EQ_INT(bt.rows, 1);
	CHECK_EQ_INT(bt.cols, 4);
	CHECK(sk_batcher_next(b, &bt) == 0);
	sk_batcher_free(b);
	/* Another pad id, and a row cap that cuts a long example. */
	o.pad_id = 7;
	o.max_len = 4;
	b = sk_batcher_new(d, NULL, 0, &o);
	CHECK(sk_batcher_next(b, &bt) == 1);
	CHECK_EQ_INT(bt.cols, 4);
	CHECK_EQ_INT(bt.len[1], 4);
	CHECK(bt.ids[2 * 4 + 2] == 7 && bt.ids[2 * 4 + 3] == 7 && bt.ids[1 * 4 + 3] == 2003);
	sk_batcher_free(b);
	sk_dataset_free(d);
}

TEST(packing_rows_and_masks)
{
	size_t lens[] = {4, 3, 5, 2, 6, 9};
	sk_dataset *d = synthetic(lens, 6);
	sk_batcher_opts o;
	sk_batcher_opts_init(&o);
	o.batch_size = 2;
	o.shuffle = 0;
	o.packing = 1;
	o.max_len = 8;
	sk_batcher *b = sk_batcher_new(d, NULL, 0, &o);
	CHECK(b != NULL);
	if (!b) return;
	/* Rows: [0 1] = 7, [2 3] = 7, [4] = 6 (5 would make 14), [5] cut to 8. */
	CHECK_EQ_INT(sk_batcher_epoch_batches(b, 0), 2);
	sk_batch bt;
	CHECK(sk_batcher_next(b, &bt) == 1);
	CHECK_EQ_INT(bt.rows, 2);
	CHECK_EQ_INT(bt.cols, 7);
	CHECK_EQ_INT(bt.nex, 4);
	CHECK(bt.row_ex[0] == 0 && bt.row_ex[1] == 2 && bt.row_ex[2] == 4);
	CHECK(bt.ex[0] == 0 && bt.ex[1] == 1 && bt.ex[2] == 2 && bt.ex[3] == 3);
	/* Row 0: example 0 (4 tokens) then example 1 (3 tokens). */
	static const int32_t want_ids[7] = {1000, 1001, 1002, 1003, 2000, 2001, 2002};
	static const uint8_t want_t[7] = {0, 1, 0, 1, 0, 1, 0}; /* example 1's first token: not a target */
	static const int32_t want_seg[7] = {0, 0, 0, 0, 1, 1, 1};
	for (size_t i = 0; i < 7; i++) {
		CHECK(bt.ids[i] == want_ids[i]);
		CHECK(bt.target[i] == want_t[i]);
		CHECK(bt.seg[i] == want_seg[i]);
	}
	CHECK(bt.ids[7] == 3000 && bt.ids[7 + 5] == 4000 && bt.target[7 + 5] == 0 && bt.seg[7 + 5] == 1);
	CHECK(sk_batcher_next(b, &bt) == 1);
	CHECK_EQ_INT(bt.rows, 2);
	CHECK_EQ_INT(bt.cols, 8);
	CHECK(bt.len[0] == 6 && bt.len[1] == 8);
	CHECK(bt.ids[6] == 0 && bt.seg[6] == -1 && bt.target[6] == 0);
	CHECK(bt.ids[8 + 7] == 6007); /* example 5 cut at 8 tokens */
	CHECK(sk_batcher_next(b, &bt) == 0);
	sk_batcher_free(b);
	o.max_len = 0;
	CHECK(sk_batcher_new(d, NULL, 0, &o) == NULL && strstr(sk_error(), "packing"));
	sk_dataset_free(d);
}

static int is_perm(const size_t *v, size_t n)
{
	char seen[512] = {0};
	for (size_t i = 0; i < n; i++) {
		if (v[i] >= n || seen[v[i]]) return 0;
		seen[v[i]] = 1;
	}
	return 1;
}

TEST(shuffle_deterministic_per_epoch)
{
	size_t lens[100];
	for (size_t i = 0; i < 100; i++) lens[i] = 2 + i % 7;
	sk_dataset *d = synthetic(lens, 100);
	sk_batcher_opts o;
	sk_batcher_opts_init(&o);
	o.seed = 42;
	o.epochs = 3;
	sk_batcher *a = sk_batcher_new(d, NULL, 0, &o), *b = sk_batcher_new(d, NULL, 0, &o);
	o.seed = 43;
	sk_batcher *c = sk_batcher_new(d, NULL, 0, &o);
	o.shuffle = 0;
	sk_batcher *id = sk_batcher_new(d, NULL, 0, &o);
	size_t e0[100], e1[100], x[100], y[100];
	sk_batcher_epoch_order(a, 0, e0);
	sk_batcher_epoch_order(a, 1, e1);
	sk_batcher_epoch_order(b, 0, x);
	CHECK(is_perm(e0, 100) && is_perm(e1, 100));
	CHECK(!memcmp(e0, x, sizeof x));     /* same seed, same order */
	CHECK(memcmp(e0, e1, sizeof e1));    /* a new permutation each epoch */
	sk_batcher_epoch_order(c, 0, y);
	CHECK(memcmp(e0, y, sizeof y));      /* another seed, another order */
	size_t moved = 0;
	for (size_t i = 0; i < 100; i++) moved += e0[i] != i;
	CHECK(moved > 80);
	sk_batcher_epoch_order(id, 1, y);
	for (size_t i = 0; i < 100; i++) CHECK(y[i] == i);
	/* Iterating gives the epoch orders, epoch after epoch. */
	sk_batch bt;
	size_t k = 0, ok = 1;
	while (sk_batcher_next(a, &bt) == 1) {
		if (k < 100) ok &= bt.ex[0] == e0[k];
		else if (k < 200) ok &= bt.ex[0] == e1[k - 100];
		ok &= bt.pos.epoch == k / 100 && bt.pos.index == k % 100;
		k++;
	}
	CHECK(ok);
	CHECK_EQ_INT(k, 300);
	sk_batcher_free(a);
	sk_batcher_free(b);
	sk_batcher_free(c);
	sk_batcher_free(id);
	sk_dataset_free(d);
}

TEST(eval_split)
{
	sk_split s, t, u;
	CHECK(sk_split_make(200, 0.1, 7, &s) == 0);
	CHECK_EQ_INT(s.neval, 20);
	CHECK_EQ_INT(s.ntrain, 180);
	char seen[200] = {0};
	int ok = 1;
	for (size_t i = 0; i < s.neval; i++) seen[s.eval[i]]++, ok &= !i || s.eval[i] > s.eval[i - 1];
	for (size_t i = 0; i < s.ntrain; i++) seen[s.train[i]]++, ok &= !i || s.train[i] > s.train[i - 1];
	for (size_t i = 0; i < 200; i++) ok &= seen[i] == 1; /* disjoint and covering */
	CHECK(ok);
	CHECK(sk_split_make(200, 0.1, 7, &t) == 0);
	CHECK(t.neval == 20 && !memcmp(s.eval, t.eval, 20 * sizeof *s.eval));
	CHECK(sk_split_make(200, 0.1, 8, &u) == 0);
	CHECK(u.neval == 20 && memcmp(s.eval, u.eval, 20 * sizeof *s.eval));
	/* Not simply the first or last rows. */
	CHECK(s.eval[0] < 100 && s.eval[19] >= 100 && s.eval[19] - s.eval[0] > 100);
	sk_split_free(&s);
	sk_split_free(&t);
	sk_split_free(&u);
	CHECK(sk_split_make(5, 0.01, 1, &s) == 0 && s.neval == 1 && s.ntrain == 4);
	sk_split_free(&s);
	CHECK(sk_split_make(1, 0.5, 1, &s) == 0 && s.neval == 0 && s.ntrain == 1);
	sk_split_free(&s);
	CHECK(sk_split_make(10, 0, 1, &s) == 0 && s.neval == 0 && s.ntrain == 10);
	sk_split_free(&s);
	CHECK(sk_split_make(10, 1.0, 1, &s) == -1);
	CHECK(sk_split_make(10, -0.1, 1, &s) == -1);
	/* A batcher over the training subset only ever yields training rows. */
	size_t lens[30];
	for (size_t i = 0; i < 30; i++) lens[i] = 3;
	sk_dataset *d = synthetic(lens, 30);
	CHECK(sk_split_make(30, 0.2, 3, &s) == 0);
	sk_batcher_opts o;
	sk_batcher_opts_init(&o);
	o.batch_size = 4;
	o.epochs = 2;
	sk_batcher *b = sk_batcher_new(d, s.train, s.ntrain, &o);
	sk_batch bt;
	size_t count = 0;
	ok = 1;
	while (sk_batcher_next(b, &bt) == 1)
		for (size_t i = 0; i < bt.nex; i++, count++)
			for (size_t k = 0; k < s.neval; k++) ok &= bt.ex[i] != s.eval[k];
	CHECK(ok);
	CHECK_EQ_INT(count, 2 * 24);
	sk_batcher_free(b);
	sk_split_free(&s);
	sk_dataset_free(d);
}

/* A resumed batcher (new object, seek to a saved position) continues with
 * exactly the batches an uninterrupted run gives. */
static void check_resume(int packing)
{
	size_t lens[37];
	for (size_t i = 0; i < 37; i++) lens[i] = 2 + (i * 7) % 11;
	sk_dataset *d = synthetic(lens, 37);
	sk_batcher_opts o;
	sk_batcher_opts_init(&o);
	o.batch_size = 3;
	o.epochs = 3;
	o.seed = 1234;
	o.packing = packing;
	o.max_len = 16;
	sk_batcher *ref = sk_batcher_new(d, NULL, 0, &o);
	/* Record every batch's ids as a checksum and its start. */
	uint64_t sums[200];
	sk_batch_pos starts[200];
	size_t nb = 0;
	sk_batch bt;
	while (nb < 200 && sk_batcher_next(ref, &bt) == 1) {
		uint64_t h = 1469598103934665603ULL;
		for (size_t i = 0; i < bt.rows * bt.cols; i++)
			h = (h ^ (uint64_t)(uint32_t)bt.ids[i] ^ ((uint64_t)bt.target[i] << 40)) * 1099511628211ULL;
		sums[nb] = h ^ bt.cols;
		starts[nb++] = bt.pos;
	}
	CHECK_EQ_INT((long long)nb, sk_batcher_total_batches(ref));
	int ok = 1;
	for (size_t k = 0; k < nb; k += 5) {
		sk_batcher *r = sk_batcher_new(d, NULL, 0, &o);
		CHECK(sk_batcher_seek(r, starts[k]) == 0);
		for (size_t j = k; j < nb; j++) {
			if (sk_batcher_next(r, &bt) != 1) {
				ok = 0;
				break;
			}
			uint64_t h = 1469598103934665603ULL;
			for (size_t i = 0; i < bt.rows * bt.cols; i++)
				h = (h ^ (uint64_t)(uint32_t)bt.ids[i] ^ ((uint64_t)bt.target[i] << 40)) * 1099511628211ULL;
			ok &= (h ^ bt.cols) == sums[j];
			ok &= j + 1 == nb || (bt.next.epoch == starts[j + 1].epoch && bt.next.index == starts[j + 1].index);
		}
		ok &= sk_batcher_next(r, &bt) == 0;
		sk_batcher_free(r);
	}
	CHECK(ok);
	/* Bad positions are refused. */
	CHECK(sk_batcher_seek(ref, (sk_batch_pos){0, 38}) == -1);
	CHECK(sk_batcher_seek(ref, (sk_batch_pos){3, 1}) == -1);
	CHECK(sk_batcher_seek(ref, (sk_batch_pos){2, 37}) == 0 && sk_batcher_next(ref, &bt) == 0);
	sk_batcher_free(ref);
	sk_dataset_free(d);
}

TEST(resume_exact) { check_resume(0); }
TEST(resume_exact_packing) { check_resume(1); }

/* ---- bad rows ---- */

/* bad_rows.jsonl, line by line: what the reason must mention ("" = good). */
static const char *const g_bad_expect[] = {
	"", "invalid JSON", NULL, "unknown role", "alternate", "empty content", "missing \"content\"",
	"no \"messages\"", "", "not a JSON object", "unknown from", "end with an assistant", "not an array",
	"must start with a user", "",
};

TEST(bad_rows_reasons)
{
	FILE *f = fopen(fx("bad_rows.jsonl"), "r");
	CHECK(f != NULL);
	if (!f) return;
	char line[4096];
	size_t ln = 0;
	while (fgets(line, sizeof line, f)) {
		const char *want = g_bad_expect[ln++];
		size_t n = strcspn(line, "\n");
		if (!want) continue;
		sk_dataset_row r;
		int rc = sk_dataset_row_parse(line, n, &r);
		if (!*want) {
			CHECK_MSG(rc == 0, "line %zu: %s", ln, sk_error());
			if (!rc) sk_dataset_row_free(&r);
		} else {
			CHECK_MSG(rc == -1 && strstr(sk_error(), want), "line %zu: %s", ln, sk_error());
		}
	}
	fclose(f);
	CHECK_EQ_INT(ln, 15);
}

TEST(bad_rows_skip)
{
	sk_dataset *d = load("bad_rows.jsonl", g_tiny, SK_LOSS_ALL, SK_BAD_ROWS_SKIP, 0);
	CHECK_MSG(d != NULL, "%s", sk_error());
	if (!d) return;
	CHECK_EQ_INT(d->n, 3);
	CHECK(d->n == 3 && d->ex[0].line == 1 && d->ex[1].line == 9 && d->ex[2].line == 15);
	CHECK_EQ_INT(d->stats.bad, 11);
	CHECK_EQ_INT(d->stats.lines, 15);
	CHECK_EQ_INT(d->nbad_kept, 5);
	CHECK(d->bad[0].line == 2 && d->bad[1].line == 4 && d->bad[2].line == 5 && d->bad[3].line == 6 &&
	      d->bad[4].line == 7);
	char msg[1024];
	CHECK_EQ_INT(sk_dataset_bad_rows_message(d, msg, sizeof msg), 11);
	CHECK_MSG(strstr(msg, "bad_rows.jsonl: skipped 11 bad rows of 14: line 2: invalid JSON") &&
	              strstr(msg, "; line 4: message 2: unknown role") && strstr(msg, "; and 6 more"),
	          "%s", msg);
	char line[512];
	sk_dataset_stats_line(d, line, sizeof line);
	CHECK_MSG(strstr(line, "3 conversations") && strstr(line, "11 bad rows skipped"), "%s", line);
	/* A tiny buffer is cut, never overrun. */
	char tiny[8];
	sk_dataset_bad_rows_message(d, tiny, sizeof tiny);
	CHECK(strlen(tiny) == 7);
	sk_dataset_free(d);
}

TEST(bad_rows_fail)
{
	sk_dataset *d = load("bad_rows.jsonl", g_tiny, SK_LOSS_ALL, SK_BAD_ROWS_FAIL, 0);
	CHECK(d == NULL);
	CHECK_MSG(strstr(sk_error(), "tests/fixtures/dataset/bad_rows.jsonl:2: invalid JSON"), "%s", sk_error());
	sk_dataset_free(d);
}

static void check_file_error(const char *name, sk_bad_rows pol, const char *want)
{
	sk_dataset *d = load(name, g_tiny, SK_LOSS_ALL, pol, 0);
	CHECK_MSG(d == NULL && strstr(sk_error(), want), "%s: %s", name, d ? "loaded" : sk_error());
	sk_dataset_free(d);
}

TEST(whole_file_errors)
{
	check_file_error("empty.jsonl", SK_BAD_ROWS_SKIP, "empty.jsonl: empty dataset");
	check_file_error("blank.jsonl", SK_BAD_ROWS_SKIP, "blank.jsonl: empty dataset");
	check_file_error("utf16.jsonl", SK_BAD_ROWS_SKIP, "utf16.jsonl: not UTF-8 text");
	check_file_error("nul.jsonl", SK_BAD_ROWS_SKIP, "nul.jsonl:2: NUL byte");
	check_file_error("no-such-file.jsonl", SK_BAD_ROWS_SKIP, "no-such-file.jsonl: cannot open");
	check_file_error("not_utf8.jsonl", SK_BAD_ROWS_FAIL, "not_utf8.jsonl:2: not valid UTF-8 (at byte 14");
	sk_dataset *d = load("not_utf8.jsonl", g_tiny, SK_LOSS_ALL, SK_BAD_ROWS_SKIP, 0);
	CHECK(d && d->n == 2 && d->stats.bad == 1 && d->bad[0].line == 2);
	sk_dataset_free(d);
	CHECK(sk_dataset_load(fx("messages.jsonl"), NULL, NULL) == NULL && strstr(sk_error(), "no tokenizer"));
}

TEST(all_rows_bad)
{
	char path[] = "/tmp/sk_test_dataset_XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0) return;
	const char *s = "{\"x\":1}\n\n[\n";
	CHECK(write(fd, s, strlen(s)) == (ssize_t)strlen(s));
	close(fd);
	CHECK(sk_dataset_load(path, g_tiny, NULL) == NULL);
	CHECK_MSG(strstr(sk_error(), "no valid conversation") && strstr(sk_error(), "skipped 2 bad rows") &&
	              strstr(sk_error(), "line 3: invalid JSON"),
	          "%s", sk_error());
	unlink(path);
}

/* A line over the bound is a bad row, read without holding it whole. */
TEST(long_lines)
{
	char path[] = "/tmp/sk_test_dataset_XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0) return;
	FILE *f = fdopen(fd, "w");
	size_t big = SK_DATASET_MAX_LINE + 100;
	fputs("{\"text\": \"", f);
	for (size_t i = 0; i < big; i++) fputc('a', f);
	fputs("\"}\n{\"text\": \"short\"}\n", f);
	fclose(f);
	sk_dataset *d = sk_dataset_load(path, g_tiny, NULL);
	CHECK_MSG(d != NULL, "%s", sk_error());
	if (d) {
		CHECK_EQ_INT(d->n, 1);
		CHECK(d->stats.bad == 1 && d->bad[0].line == 1 && strstr(d->bad[0].reason, "line longer than 16777216"));
	}
	sk_dataset_free(d);
	sk_dataset_opts o;
	sk_dataset_opts_init(&o);
	o.bad_rows = SK_BAD_ROWS_FAIL;
	o.max_line = 1000;
	CHECK(sk_dataset_load(path, g_tiny, &o) == NULL);
	CHECK_MSG(strstr(sk_error(), ":1: line longer than 1000 bytes"), "%s", sk_error());
	unlink(path);
}

/* ---- the Persian sample dataset ---- */

TEST(persian_sample_loads_clean)
{
	const sk_tokenizer *tok = g_real ? g_real : g_tiny;
	sk_dataset_opts o;
	sk_dataset_opts_init(&o);
	o.bad_rows = SK_BAD_ROWS_FAIL;
	sk_dataset *d = sk_dataset_load(sk_test_path("data/persian-sample.jsonl"), tok, &o);
	CHECK_MSG(d != NULL, "%s", sk_error());
	if (!d) return;
	CHECK(d->n >= 110);
	CHECK_EQ_INT(d->stats.bad, 0);
	CHECK_EQ_INT(d->stats.fmt_messages, d->n);
	CHECK(d->stats.system_msgs > d->n / 4);
	char line[512];
	sk_dataset_stats_line(d, line, sizeof line);
	printf("# %s (%s tokenizer): %s\n", "data/persian-sample.jsonl", g_real ? "Gemma" : "tiny", line);
	sk_dataset_free(d);
	o.loss_on = SK_LOSS_RESPONSES;
	d = sk_dataset_load(sk_test_path("data/persian-sample.jsonl"), tok, &o);
	CHECK(d != NULL);
	if (d) {
		sk_dataset_stats_line(d, line, sizeof line);
		printf("# responses only: %s\n", line);
		CHECK(d->stats.targets < d->stats.tokens && d->stats.targets > d->stats.tokens / 4);
	}
	sk_dataset_free(d);
}

int main(void)
{
	load_tokenizers();
	if (!g_tiny) return 1;
	RUN(parse_options);
	RUN(row_formats);
	RUN(masks_all_match_reference);
	RUN(masks_responses_match_reference);
	RUN(masks_by_hand);
	RUN(sharegpt_renders_like_messages);
	RUN(text_rows_bos_all_trainable);
	RUN(bom_and_crlf);
	RUN(truncation_keeps_start);
	RUN(dataset_add_and_stats);
	RUN(padding_per_batch);
	RUN(packing_rows_and_masks);
	RUN(shuffle_deterministic_per_epoch);
	RUN(eval_split);
	RUN(resume_exact);
	RUN(resume_exact_packing);
	RUN(bad_rows_reasons);
	RUN(bad_rows_skip);
	RUN(bad_rows_fail);
	RUN(whole_file_errors);
	RUN(all_rows_bad);
	RUN(long_lines);
	RUN(persian_sample_loads_clean);
	sk_tokenizer_free(g_real);
	sk_tokenizer_free(g_tiny);
	TEST_EXIT();
}
