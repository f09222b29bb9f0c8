/* Reading a JSONL dataset: lines under a bound, rows rendered through the
 * chat template into ids and loss masks, bad rows by policy, statistics. */
#include "engine/train/dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/text/chat_template.h"
#include "engine/error.h"
#include "engine/i18n.h"

int sk_loss_on_parse(const char *s, sk_loss_on *out)
{
	if (s && !strcmp(s, "all")) *out = SK_LOSS_ALL;
	else if (s && !strcmp(s, "responses")) *out = SK_LOSS_RESPONSES;
	else
		return sk_fail(_("unknown loss mode \"%.40s\" (expected all or responses)"), s ? s : "");
	return 0;
}

int sk_bad_rows_parse(const char *s, sk_bad_rows *out)
{
	if (s && !strcmp(s, "skip")) *out = SK_BAD_ROWS_SKIP;
	else if (s && !strcmp(s, "fail")) *out = SK_BAD_ROWS_FAIL;
	else
		return sk_fail(_("unknown bad-row policy \"%.40s\" (expected skip or fail)"), s ? s : "");
	return 0;
}

void sk_dataset_opts_init(sk_dataset_opts *o)
{
	memset(o, 0, sizeof *o);
	o->loss_on = SK_LOSS_ALL;
	o->bad_rows = SK_BAD_ROWS_SKIP;
}

sk_dataset *sk_dataset_new(const char *name)
{
	sk_dataset *ds = calloc(1, sizeof *ds);
	if (!ds || !(ds->path = strdup(name ? name : "dataset"))) {
		free(ds);
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	return ds;
}

void sk_dataset_free(sk_dataset *ds)
{
	if (!ds) return;
	free(ds->path);
	free(ds->ex);
	free(ds->ids);
	free(ds->target);
	free(ds);
}

static int pool_reserve(sk_dataset *ds, size_t more)
{
	if (more > SIZE_MAX / 8 - ds->pool_n) return sk_fail(_("%s: dataset too large"), ds->path);
	size_t need = ds->pool_n + more;
	if (need <= ds->pool_cap) return 0;
	size_t cap = ds->pool_cap ? ds->pool_cap : 4096;
	while (cap < need) cap *= 2;
	int32_t *ids = realloc(ds->ids, cap * sizeof *ids);
	if (!ids) return sk_fail(_("%s: out of memory"), ds->path);
	ds->ids = ids;
	uint8_t *t = realloc(ds->target, cap);
	if (!t) return sk_fail(_("%s: out of memory"), ds->path);
	ds->target = t;
	ds->pool_cap = cap;
	return 0;
}

/* Appends an example whose tokens are already at the end of the pool
 * (pool_n .. pool_n + n); updates the statistics. */
static int commit_example(sk_dataset *ds, size_t n, size_t full_n, size_t line, size_t turns, int has_system)
{
	size_t nt = 0;
	for (size_t i = 0; i < n; i++) nt += ds->target[ds->pool_n + i] != 0;
	sk_dataset_stats *s = &ds->stats;
	if (full_n > s->max_full_len) s->max_full_len = full_n;
	if (n > 0 && n < full_n) s->truncated++;
	if (nt == 0) {
		s->no_target++;
		return 0;
	}
	if (ds->n == ds->cap) {
		size_t cap = ds->cap ? ds->cap * 2 : 256;
		if (cap > SIZE_MAX / sizeof *ds->ex) return sk_fail(_("%s: dataset too large"), ds->path);
		sk_example *ex = realloc(ds->ex, cap * sizeof *ex);
		if (!ex) return sk_fail(_("%s: out of memory"), ds->path);
		ds->ex = ex;
		ds->cap = cap;
	}
	ds->ex[ds->n++] = (sk_example){.off = ds->pool_n, .n = n, .full_n = full_n, .line = line, .turns = turns,
	                               .ntargets = nt};
	ds->pool_n += n;
	s->conversations++;
	s->turns += turns;
	s->system_msgs += has_system != 0;
	s->tokens += n;
	s->targets += nt;
	if (s->conversations == 1 || n < s->min_len) s->min_len = n;
	if (n > s->max_len) s->max_len = n;
	s->mean_len = (double)s->tokens / (double)s->conversations;
	return 0;
}

int sk_dataset_add(sk_dataset *ds, const int32_t *ids, const uint8_t *target, size_t n, size_t line)
{
	if (pool_reserve(ds, n)) return -1;
	memcpy(ds->ids + ds->pool_n, ids, n * sizeof *ids);
	for (size_t i = 0; i < n; i++) ds->target[ds->pool_n + i] = target ? target[i] != 0 : i > 0;
	if (n) ds->target[ds->pool_n] = 0; /* nothing predicts the first token */
	return commit_example(ds, n, n, line, 1, 0);
}

size_t sk_dataset_example(const sk_dataset *ds, size_t i, const int32_t **ids, const uint8_t **target)
{
	if (!ds || i >= ds->n) return 0;
	if (ids) *ids = ds->ids + ds->ex[i].off;
	if (target) *target = ds->target + ds->ex[i].off;
	return ds->ex[i].n;
}

/* ---- one row: parse, render, mask ---- */

/* Offset of the first byte that does not start a valid UTF-8 sequence:
 * sequences are at most 4 bytes, so checking each candidate start with a
 * window of up to 4 bytes finds it in linear time. */
static size_t utf8_bad_offset(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t k = 1;
		while (k <= 4 && i + k <= len && !sk_chat_utf8_valid(s + i, k)) k++;
		if (k > 4 || i + k > len) return i;
		i += k;
	}
	return len;
}

typedef struct {
	sk_ids ids;
	sk_chat_labels labels;
} scratch;

static int add_row(sk_dataset *ds, const sk_tokenizer *tok, const sk_dataset_opts *o, const char *line,
                   size_t len, size_t lineno, scratch *sc)
{
	sk_dataset_row row;
	if (!sk_chat_utf8_valid(line, len))
		return sk_fail(_("not valid UTF-8 (at byte %zu of the line)"), utf8_bad_offset(line, len) + 1);
	if (sk_dataset_row_parse(line, len, &row)) return -1;
	sc->ids.n = 0;
	sc->labels.n = 0;
	int rc;
	if (row.format == SK_ROW_TEXT) rc = sk_tokenizer_encode(tok, row.text, row.text_len, 1, &sc->ids);
	else
		rc = sk_chat_render(tok, row.msgs, row.nmsgs, 0, &sc->ids, &sc->labels);
	if (rc) {
		sk_dataset_row_free(&row);
		return -1;
	}
	size_t full = sc->ids.n, n = full;
	if (o->max_len && n > o->max_len) n = o->max_len;
	int text = row.format == SK_ROW_TEXT, responses = o->loss_on == SK_LOSS_RESPONSES && !text;
	if (!text && sc->labels.n != full) {
		sk_dataset_row_free(&row);
		return sk_fail("%s", _("internal error: labels and ids differ in length"));
	}
	if (pool_reserve(ds, n)) {
		sk_dataset_row_free(&row);
		return -2; /* a whole-load error, not a bad row */
	}
	memcpy(ds->ids + ds->pool_n, sc->ids.v, n * sizeof *sc->ids.v);
	for (size_t i = 0; i < n; i++)
		ds->target[ds->pool_n + i] =
		    i == 0 ? 0 : responses ? sc->labels.v[i] == SK_CHAT_LABEL_RESPONSE : 1;
	size_t turns = text ? 1 : row.nmsgs;
	int sys = !text && row.msgs[0].role == SK_CHAT_SYSTEM;
	if (row.format == SK_ROW_MESSAGES) ds->stats.fmt_messages++;
	else if (row.format == SK_ROW_SHAREGPT) ds->stats.fmt_sharegpt++;
	else
		ds->stats.fmt_text++;
	sk_dataset_row_free(&row);
	return commit_example(ds, n, full, lineno, turns, sys) ? -2 : 0;
}

static void note_bad(sk_dataset *ds, size_t lineno, const char *why)
{
	ds->stats.bad++;
	if (ds->nbad_kept < SK_DATASET_BAD_KEPT) {
		sk_dataset_bad_row *b = &ds->bad[ds->nbad_kept++];
		b->line = lineno;
		snprintf(b->reason, sizeof b->reason, "%s", why);
	}
}

/* ---- reading lines under a bound ---- */

typedef struct {
	FILE *f;
	char *buf;
	size_t len, cap, max;
	int too_long; /* the line was longer than max: its rest was skipped */
	int has_nul;
} line_reader;

/* Reads the next line (without "\n", and without a "\r" before it) into
 * r->buf. Returns 1, 0 at the end, -1 on a read error. A line longer than
 * r->max keeps only its first r->max bytes and sets too_long, so memory
 * stays bounded whatever the file holds. */
static int next_line(line_reader *r)
{
	int c;
	r->len = 0;
	r->too_long = 0;
	r->has_nul = 0;
	int any = 0;
	while ((c = getc_unlocked(r->f)) != EOF) {
		any = 1;
		if (c == '\n') break;
		if (c == 0) r->has_nul = 1;
		if (r->len >= r->max) {
			r->too_long = 1;
			continue;
		}
		if (r->len + 1 >= r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 4096;
			if (cap > r->max + 1) cap = r->max + 1;
			char *b = realloc(r->buf, cap);
			if (!b) return -1;
			r->buf = b;
			r->cap = cap;
		}
		r->buf[r->len++] = (char)c;
	}
	if (ferror(r->f)) return -1;
	if (!any) return 0;
	if (r->len && r->buf[r->len - 1] == '\r' && !r->too_long) r->len--;
	return 1;
}

static int is_blank_line(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
	return 1;
}

sk_dataset *sk_dataset_load(const char *path, const sk_tokenizer *tok, const sk_dataset_opts *opts)
{
	sk_dataset_opts def;
	if (!opts) {
		sk_dataset_opts_init(&def);
		opts = &def;
	}
	if (!tok) {
		sk_fail(_("%s: no tokenizer"), path);
		return NULL;
	}
	FILE *f = fopen(path, "rb");
	if (!f) {
		sk_fail(_("%s: cannot open: %s"), path, strerror(errno));
		return NULL;
	}
	sk_dataset *ds = sk_dataset_new(path);
	line_reader r = {.f = f, .max = opts->max_line ? opts->max_line : SK_DATASET_MAX_LINE};
	scratch sc = {0};
	size_t lineno = 0;
	int rc;
	if (!ds) goto fail;
	while ((rc = next_line(&r)) == 1) {
		lineno++;
		char *s = r.buf;
		size_t n = r.len;
		if (lineno == 1) {
			const unsigned char *u = (const unsigned char *)s;
			if (n >= 2 && ((u[0] == 0xff && u[1] == 0xfe) || (u[0] == 0xfe && u[1] == 0xff))) {
				sk_fail(_("%s: not UTF-8 text (it starts with a UTF-16 or UTF-32 byte order mark)"), path);
				goto fail;
			}
			if (n >= 3 && u[0] == 0xef && u[1] == 0xbb && u[2] == 0xbf) s += 3, n -= 3;
		}
		if (r.has_nul) {
			sk_fail(_("%s:%zu: NUL byte: not a UTF-8 text file"), path, lineno);
			goto fail;
		}
		if (!r.too_long && is_blank_line(s, n)) continue;
		char why[256];
		int bad;
		if (r.too_long) {
			snprintf(why, sizeof why, _("line longer than %zu bytes"), r.max);
			bad = 1;
		} else {
			int e = add_row(ds, tok, opts, s, n, lineno, &sc);
			if (e == -2) goto fail;
			bad = e != 0;
			if (bad) snprintf(why, sizeof why, "%s", sk_error());
		}
		if (!bad) continue;
		if (opts->bad_rows == SK_BAD_ROWS_FAIL) {
			sk_fail("%s:%zu: %s", path, lineno, why);
			goto fail;
		}
		note_bad(ds, lineno, why);
	}
	if (rc < 0) {
		sk_fail(_("%s: read error after line %zu"), path, lineno);
		goto fail;
	}
	ds->stats.lines = lineno;
	if (ds->n == 0) {
		if (ds->stats.bad) {
			char msg[768];
			sk_dataset_bad_rows_message(ds, msg, sizeof msg);
			sk_fail(_("%s: no valid conversation (%s)"), path, msg);
		} else if (ds->stats.no_target) {
			sk_fail(_("%s: no example has a target token left (max length too small?)"), path);
		} else {
			sk_fail(_("%s: empty dataset (no conversation)"), path);
		}
		goto fail;
	}
	fclose(f);
	free(r.buf);
	sk_ids_free(&sc.ids);
	sk_chat_labels_free(&sc.labels);
	return ds;
fail:
	fclose(f);
	free(r.buf);
	sk_ids_free(&sc.ids);
	sk_chat_labels_free(&sc.labels);
	sk_dataset_free(ds);
	return NULL;
}

/* ---- messages ---- */

size_t sk_dataset_bad_rows_message(const sk_dataset *ds, char *buf, size_t cap)
{
	if (!cap) return ds->stats.bad;
	buf[0] = '\0';
	if (!ds->stats.bad) return 0;
	size_t total = ds->stats.bad + ds->stats.conversations + ds->stats.no_target;
	size_t k = (size_t)snprintf(buf, cap, _("%s: skipped %zu bad rows of %zu"), ds->path, ds->stats.bad, total);
	for (size_t i = 0; i < ds->nbad_kept && k < cap; i++)
		k += (size_t)snprintf(buf + k, cap - k, "%s line %zu: %s", i ? ";" : ":", ds->bad[i].line,
		                      ds->bad[i].reason);
	if (ds->stats.bad > ds->nbad_kept && k < cap)
		snprintf(buf + k, cap - k, _("; and %zu more"), ds->stats.bad - ds->nbad_kept);
	return ds->stats.bad;
}

void sk_dataset_stats_line(const sk_dataset *ds, char *buf, size_t cap)
{
	const sk_dataset_stats *s = &ds->stats;
	if (!cap) return;
	size_t k = (size_t)snprintf(buf, cap,
	                            _("%zu conversations, %zu turns, %zu tokens (%zu targets), length mean %.1f "
	                              "min %zu max %zu"),
	                            s->conversations, s->turns, s->tokens, s->targets, s->mean_len, s->min_len,
	                            s->max_len);
	if (s->truncated && k < cap) k += (size_t)snprintf(buf + k, cap - k, _(", %zu truncated"), s->truncated);
	if (s->no_target && k < cap)
		k += (size_t)snprintf(buf + k, cap - k, _(", %zu without targets dropped"), s->no_target);
	if (s->bad && k < cap) snprintf(buf + k, cap - k, _(", %zu bad rows skipped"), s->bad);
}
