/* Checkpoint directories: save, verify, discover, prune (checkpoint.h). */
#include "engine/train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/format/atomic_dir.h"
#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/i18n.h"

#define STATE_MAX_BYTES ((size_t)64 << 20)
#define STATE_FORMAT "sokhan-trainer-state"
#define STATE_VERSION 1
#define MAX_FILES 256

static void logf_(sk_ckpt_log_fn log, void *ctx, const char *fmt, ...) SK_PRINTF(3, 4);
static void logf_(sk_ckpt_log_fn log, void *ctx, const char *fmt, ...)
{
	if (!log)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	log(ctx, line);
}

void sk_trainer_state_free(sk_trainer_state *st)
{
	for (int i = 0; i < st->nrng && i < SK_CKPT_MAX_RNG; i++)
		free(st->rng[i].data);
	json_decref(st->options);
	free(st->loss_steps);
	free(st->losses);
	memset(st, 0, sizeof *st);
}

/* ---- writing ---- */

static json_t *hex_string(const unsigned char *d, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char *s = malloc(2 * n + 1);
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		s[2 * i] = digits[d[i] >> 4];
		s[2 * i + 1] = digits[d[i] & 15];
	}
	s[2 * n] = '\0';
	json_t *j = json_string(s);
	free(s);
	return j;
}

static json_t *real_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

/* {name: size} of the regular files directly in dir. */
static json_t *list_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		sk_fail("%s: %s", dir, strerror(errno));
		return NULL;
	}
	json_t *o = json_object();
	struct dirent *e;
	int bad = !o;
	while (!bad && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *p = sk_path_join(dir, e->d_name);
		struct stat st;
		if (p && lstat(p, &st) == 0 && S_ISREG(st.st_mode))
			bad |= json_object_set_new(o, e->d_name, json_integer((json_int_t)st.st_size));
		bad |= !p;
		free(p);
	}
	closedir(d);
	if (bad) {
		json_decref(o);
		sk_fail(_("%s: out of memory"), dir);
		return NULL;
	}
	return o;
}

static json_t *state_json(const sk_trainer_state *s, json_t *files)
{
	json_t *o = json_object(), *rng = json_object(), *hist = json_array();
	int bad = !o || !rng || !hist;
	if (!bad) {
		bad |= json_object_set_new(o, "format", json_string(STATE_FORMAT));
		bad |= json_object_set_new(o, "version", json_integer(STATE_VERSION));
		bad |= json_object_set_new(o, "step", json_integer(s->step));
		bad |= json_object_set_new(o, "epoch", real_or_null(s->epoch));
		bad |= json_object_set_new(o, "data_epoch", json_integer(s->data_epoch));
		bad |= json_object_set_new(o, "data_position", json_integer(s->data_pos));
		bad |= json_object_set_new(o, "tokens_seen", json_integer(s->tokens_seen));
		bad |= json_object_set_new(o, "elapsed_s", real_or_null(s->elapsed_s));
		for (int i = 0; i < s->nrng && !bad; i++)
			bad |= json_object_set_new(rng, s->rng[i].name, hex_string(s->rng[i].data, s->rng[i].len));
		bad |= json_object_set(o, "rng", rng);
		bad |= json_object_set(o, "options", s->options ? s->options : json_null());
		for (size_t i = 0; i < s->nloss && !bad; i++)
			bad |= json_array_append_new(hist, json_pack("[Io]", (json_int_t)s->loss_steps[i],
								     real_or_null(s->losses[i])));
		bad |= json_object_set(o, "loss_history", hist);
		bad |= json_object_set(o, "files", files);
	}
	json_decref(rng);
	json_decref(hist);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int check_state_for_save(const char *path, const sk_trainer_state *s)
{
	if (s->step < 0 || s->data_epoch < 0 || s->data_pos < 0 || s->tokens_seen < 0)
		return sk_fail(_("%s: negative step or data position"), path);
	if (s->nrng < 0 || s->nrng > SK_CKPT_MAX_RNG)
		return sk_fail(_("%s: too many RNG states"), path);
	for (int i = 0; i < s->nrng; i++) {
		const sk_ckpt_rng *r = &s->rng[i];
		if (!r->name[0] || memchr(r->name, '\0', sizeof r->name) == NULL || r->len > SK_CKPT_MAX_RNG_BYTES ||
		    (r->len && !r->data))
			return sk_fail(_("%s: bad RNG state %d"), path, i);
		for (int k = 0; k < i; k++)
			if (strcmp(s->rng[k].name, r->name) == 0)
				return sk_fail(_("%s: RNG state '%s' given twice"), path, r->name);
	}
	if (s->nloss > SK_CKPT_MAX_LOSS_HISTORY || (s->nloss && (!s->loss_steps || !s->losses)))
		return sk_fail(_("%s: bad loss history"), path);
	if (s->options && !json_is_object(s->options))
		return sk_fail(_("%s: the run options must be a JSON object"), path);
	return 0;
}

static int write_json(const char *path, json_t *o)
{
	char *text = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
	if (!text)
		return sk_fail(_("%s: out of memory"), path);
	size_t n = strlen(text);
	text[n] = '\n'; /* the NUL becomes the final newline */
	int rc = sk_write_file_atomic(path, text, n + 1);
	free(text);
	return rc;
}

int sk_checkpoint_save(const char *run_dir, const sk_checkpoint *c, char **out_dir)
{
	if (out_dir)
		*out_dir = NULL;
	char name[64];
	snprintf(name, sizeof name, "checkpoint-%" PRId64, c->state ? c->state->step : 0);
	char *path = sk_path_join(run_dir, name);
	if (!path)
		return sk_fail(_("%s: out of memory"), run_dir);
	if (!c->state || check_state_for_save(path, c->state)) {
		if (!c->state)
			sk_fail(_("%s: no trainer state"), path);
		free(path);
		return -1;
	}
	sk_atomic_dir d;
	if (sk_atomic_dir_begin(&d, path)) {
		free(path);
		return -1;
	}
	json_t *files = NULL, *st = NULL;
	char *spath = sk_path_join(d.tmp_path, SK_CKPT_STATE_FILE), *mpath = sk_path_join(d.tmp_path, SK_CKPT_MARKER);
	if (!spath || !mpath) {
		sk_fail(_("%s: out of memory"), path);
		goto fail;
	}
	if (sk_adapter_write_files(d.tmp_path, c->info, c->pairs, c->npairs))
		goto fail;
	if (c->save_optimizer && c->save_optimizer(c->optimizer_ctx, d.tmp_path)) {
		if (!*sk_error())
			sk_fail(_("%s: saving the optimizer state failed"), path);
		goto fail;
	}
	/* the sizes let discovery notice a truncated file */
	if (!(files = list_files(d.tmp_path)))
		goto fail;
	if (!(st = state_json(c->state, files))) {
		sk_fail(_("%s: out of memory"), path);
		goto fail;
	}
	if (write_json(spath, st))
		goto fail;
	char marker[64];
	int mlen = snprintf(marker, sizeof marker, "step %" PRId64 "\n", c->state->step);
	if (sk_write_file_atomic(mpath, marker, (size_t)mlen))
		goto fail;
	json_decref(files);
	json_decref(st);
	free(spath);
	free(mpath);
	if (sk_atomic_dir_commit(&d)) {
		free(path);
		return -1;
	}
	if (out_dir)
		*out_dir = path;
	else
		free(path);
	return 0;
fail:
	json_decref(files);
	json_decref(st);
	free(spath);
	free(mpath);
	free(path);
	sk_atomic_dir_abort(&d);
	return -1;
}

int sk_checkpoint_save_final(const char *run_dir, const sk_adapter_info *info, const sk_adapter_pair *pairs,
			     size_t n)
{
	char *path = sk_path_join(run_dir, "adapter");
	if (!path)
		return sk_fail(_("%s: out of memory"), run_dir);
	int rc = sk_adapter_write(path, info, pairs, n);
	free(path);
	return rc;
}

/* ---- reading ---- */

static int get_int(const char *path, json_t *o, const char *key, int64_t *out)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return sk_fail(_("%s: '%s' must be a non-negative integer"), path, key);
	*out = json_integer_value(v);
	return 0;
}

static int get_real(const char *path, json_t *o, const char *key, double *out)
{
	json_t *v = json_object_get(o, key);
	if (json_is_null(v)) {
		*out = NAN;
		return 0;
	}
	if (!json_is_number(v) || json_number_value(v) < 0)
		return sk_fail(_("%s: '%s' must be a non-negative number"), path, key);
	*out = json_number_value(v);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int read_rng(const char *path, json_t *rng, sk_trainer_state *st)
{
	if (!json_is_object(rng))
		return sk_fail(_("%s: 'rng' must be an object"), path);
	if (json_object_size(rng) > SK_CKPT_MAX_RNG)
		return sk_fail(_("%s: more than %d RNG states"), path, SK_CKPT_MAX_RNG);
	const char *key;
	json_t *v;
	json_object_foreach(rng, key, v) {
		size_t kl = strlen(key);
		const char *h = json_string_value(v);
		size_t hl = h ? json_string_length(v) : 0;
		if (kl == 0 || kl >= sizeof st->rng[0].name)
			return sk_fail(_("%s: bad RNG state name"), path);
		if (!h || hl % 2 || hl / 2 > SK_CKPT_MAX_RNG_BYTES)
			return sk_fail(_("%s: RNG state '%s' must be a hex string of at most %u bytes"), path, key,
				       SK_CKPT_MAX_RNG_BYTES);
		sk_ckpt_rng *r = &st->rng[st->nrng];
		r->data = malloc(hl / 2 + 1);
		if (!r->data)
			return sk_fail(_("%s: out of memory"), path);
		st->nrng++;
		memcpy(r->name, key, kl + 1);
		r->len = hl / 2;
		for (size_t i = 0; i < r->len; i++) {
			int a = hexval(h[2 * i]), b = hexval(h[2 * i + 1]);
			if (a < 0 || b < 0)
				return sk_fail(_("%s: RNG state '%s' is not a hex string"), path, key);
			r->data[i] = (unsigned char)(a << 4 | b);
		}
	}
	return 0;
}

static int read_history(const char *path, json_t *h, sk_trainer_state *st)
{
	if (!h || json_is_null(h))
		return 0;
	if (!json_is_array(h) || json_array_size(h) > SK_CKPT_MAX_LOSS_HISTORY)
		return sk_fail(_("%s: 'loss_history' must be an array of at most %d entries"), path,
			       SK_CKPT_MAX_LOSS_HISTORY);
	size_t n = json_array_size(h);
	if (n == 0)
		return 0;
	st->loss_steps = malloc(n * sizeof *st->loss_steps);
	st->losses = malloc(n * sizeof *st->losses);
	if (!st->loss_steps || !st->losses)
		return sk_fail(_("%s: out of memory"), path);
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(h, i), *s = json_array_get(e, 0), *l = json_array_get(e, 1);
		if (!json_is_array(e) || json_array_size(e) != 2 || !json_is_integer(s) ||
		    !(json_is_number(l) || json_is_null(l)))
			return sk_fail(_("%s: loss_history entry %zu must be [step, loss]"), path, i);
		st->loss_steps[i] = json_integer_value(s);
		st->losses[i] = json_is_null(l) ? NAN : json_number_value(l);
	}
	st->nloss = n;
	return 0;
}

/* Parses trainer_state.json text; *files_out (optional) gets the "files" object. */
static int parse_state_text(const char *text, size_t len, const char *path, sk_trainer_state *st,
			    json_t **files_out)
{
	memset(st, 0, sizeof *st);
	if (files_out)
		*files_out = NULL;
	int rc = -1;
	json_error_t je;
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!o) {
		sk_fail(_("%s: line %d: %s"), path, je.line, je.text);
		goto out;
	}
	json_t *fmt = json_object_get(o, "format"), *ver = json_object_get(o, "version");
	if (!json_is_object(o) || !json_is_string(fmt) || strcmp(json_string_value(fmt), STATE_FORMAT) != 0) {
		sk_fail(_("%s: not a sokhan trainer state"), path);
		goto out;
	}
	if (!json_is_integer(ver) || json_integer_value(ver) < 1 || json_integer_value(ver) > STATE_VERSION) {
		sk_fail(_("%s: unsupported trainer state version"), path);
		goto out;
	}
	if (get_int(path, o, "step", &st->step) || get_real(path, o, "epoch", &st->epoch) ||
	    get_int(path, o, "data_epoch", &st->data_epoch) || get_int(path, o, "data_position", &st->data_pos) ||
	    get_int(path, o, "tokens_seen", &st->tokens_seen) || get_real(path, o, "elapsed_s", &st->elapsed_s) ||
	    read_rng(path, json_object_get(o, "rng"), st) ||
	    read_history(path, json_object_get(o, "loss_history"), st))
		goto out;
	json_t *opts = json_object_get(o, "options");
	if (opts && !json_is_null(opts)) {
		if (!json_is_object(opts)) {
			sk_fail(_("%s: 'options' must be an object"), path);
			goto out;
		}
		st->options = json_incref(opts);
	}
	if (files_out) {
		json_t *f = json_object_get(o, "files");
		if (!json_is_object(f)) {
			sk_fail(_("%s: 'files' must be an object"), path);
			goto out;
		}
		*files_out = json_incref(f);
	}
	rc = 0;
out:
	if (rc)
		sk_trainer_state_free(st);
	json_decref(o);
	return rc;
}

int sk_checkpoint_parse_state(const char *json, size_t len, const char *name, sk_trainer_state *st)
{
	return parse_state_text(json, len, name, st, NULL);
}

static int parse_state(const char *ckpt_dir, sk_trainer_state *st, json_t **files_out)
{
	memset(st, 0, sizeof *st);
	if (files_out)
		*files_out = NULL;
	char *path = sk_path_join(ckpt_dir, SK_CKPT_STATE_FILE), *text = NULL;
	size_t len;
	if (!path)
		return sk_fail(_("%s: out of memory"), ckpt_dir);
	int rc = sk_read_file(path, STATE_MAX_BYTES, &text, &len);
	if (!rc)
		rc = parse_state_text(text, len, path, st, files_out);
	free(text);
	free(path);
	return rc;
}

int sk_checkpoint_read_state(const char *ckpt_dir, sk_trainer_state *st)
{
	return parse_state(ckpt_dir, st, NULL);
}

static int check_files(const char *dir, json_t *files)
{
	if (json_object_size(files) > MAX_FILES)
		return sk_fail(_("%s: too many files listed"), dir);
	static const char *const needed[] = { "adapter_config.json", "adapter_model.safetensors" };
	for (size_t i = 0; i < 2; i++)
		if (!json_object_get(files, needed[i]))
			return sk_fail(_("%s: %s is not listed in %s"), dir, needed[i], SK_CKPT_STATE_FILE);
	const char *name;
	json_t *v;
	json_object_foreach(files, name, v) {
		if (!*name || strchr(name, '/') || strcmp(name, "..") == 0 || strcmp(name, ".") == 0 ||
		    !json_is_integer(v))
			return sk_fail(_("%s: bad entry '%s' in the file list"), dir, name);
		char *p = sk_path_join(dir, name);
		if (!p)
			return sk_fail(_("%s: out of memory"), dir);
		struct stat st;
		int ok = lstat(p, &st) == 0 && S_ISREG(st.st_mode);
		free(p);
		if (!ok)
			return sk_fail(_("%s: %s is missing"), dir, name);
		if ((json_int_t)st.st_size != json_integer_value(v))
			return sk_fail(_("%s: %s has %lld bytes, %lld expected"), dir, name, (long long)st.st_size,
				       (long long)json_integer_value(v));
	}
	return 0;
}

int sk_checkpoint_verify(const char *ckpt_dir, int64_t expect_step)
{
	if (sk_is_dir(ckpt_dir) != 1)
		return sk_fail(_("%s: not a directory"), ckpt_dir);
	char *marker = sk_path_join(ckpt_dir, SK_CKPT_MARKER);
	if (!marker)
		return sk_fail(_("%s: out of memory"), ckpt_dir);
	int has_marker = sk_file_exists(marker);
	free(marker);
	if (!has_marker)
		return sk_fail(_("%s: no '%s' marker (the save did not finish)"), ckpt_dir, SK_CKPT_MARKER);
	sk_trainer_state st;
	json_t *files;
	if (parse_state(ckpt_dir, &st, &files))
		return -1;
	int rc = 0;
	if (expect_step >= 0 && st.step != expect_step)
		rc = sk_fail(_("%s: trainer state is for step %lld"), ckpt_dir, (long long)st.step);
	if (!rc)
		rc = check_files(ckpt_dir, files);
	json_decref(files);
	sk_trainer_state_free(&st);
	return rc;
}

/* ---- discovery ---- */

typedef struct {
	int64_t step;
	char *name;
} ckpt_entry;

/* "checkpoint-123" → 123; -1 for anything else (leading zeros included,
 * so one step has one name). */
static int64_t parse_name(const char *name)
{
	const char *p = name + strlen("checkpoint-");
	if (strncmp(name, "checkpoint-", strlen("checkpoint-")) != 0 || !*p || strlen(p) > 18 ||
	    (p[0] == '0' && p[1]))
		return -1;
	int64_t v = 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v;
}

static int by_step(const void *a, const void *b)
{
	const ckpt_entry *x = a, *y = b;
	return x->step < y->step ? -1 : x->step > y->step;
}

static void free_entries(ckpt_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

/* The complete checkpoints of run_dir, sorted by step; logs what is ignored.
 * Returns the count, or -1. A missing run_dir has none. */
static long list_complete(const char *run_dir, ckpt_entry **out, sk_ckpt_log_fn log, void *ctx)
{
	*out = NULL;
	DIR *d = opendir(run_dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return sk_fail(_("%s: cannot read the directory: %s"), run_dir, strerror(errno));
	}
	ckpt_entry *e = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "checkpoint-", strlen("checkpoint-")) != 0)
			continue;
		char *p = sk_path_join(run_dir, de->d_name);
		if (!p)
			goto oom;
		int64_t step = parse_name(de->d_name);
		if (step < 0) {
			logf_(log, ctx, _("ignoring %s (not a checkpoint name: left over from an interrupted save or delete?)"), p);
			free(p);
			continue;
		}
		if (sk_checkpoint_verify(p, step)) {
			logf_(log, ctx, _("ignoring incomplete checkpoint: %s"), sk_error());
			sk_error_clear();
			free(p);
			continue;
		}
		free(p);
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			ckpt_entry *ne = realloc(e, nc * sizeof *e);
			if (!ne)
				goto oom;
			e = ne;
			cap = nc;
		}
		e[n].step = step;
		if (!(e[n].name = strdup(de->d_name)))
			goto oom;
		n++;
	}
	closedir(d);
	if (n)
		qsort(e, n, sizeof *e, by_step);
	*out = e;
	return (long)n;
oom:
	closedir(d);
	free_entries(e, n);
	return sk_fail(_("%s: out of memory"), run_dir);
}

int sk_checkpoint_find_latest(const char *run_dir, char **dir, int64_t *step, sk_ckpt_log_fn log, void *ctx)
{
	*dir = NULL;
	*step = -1;
	ckpt_entry *e;
	long n = list_complete(run_dir, &e, log, ctx);
	if (n <= 0)
		return (int)n;
	*dir = sk_path_join(run_dir, e[n - 1].name);
	*step = e[n - 1].step;
	free_entries(e, (size_t)n);
	if (!*dir)
		return sk_fail(_("%s: out of memory"), run_dir);
	return 1;
}

int sk_checkpoint_prune(const char *run_dir, int keep, sk_ckpt_log_fn log, void *ctx)
{
	if (keep < 1)
		return 0;
	ckpt_entry *e;
	long n = list_complete(run_dir, &e, log, ctx);
	if (n < 0)
		return -1;
	int removed = 0, rc = 0;
	for (long i = 0; i + keep < n; i++) {
		char *p = sk_path_join(run_dir, e[i].name);
		size_t pl = p ? strlen(p) : 0;
		char *old = p ? malloc(pl + 16) : NULL;
		if (!old) {
			free(p);
			rc = sk_fail(_("%s: out of memory"), run_dir);
			break;
		}
		memcpy(old, p, pl);
		memcpy(old + pl, ".old-XXXXXX", 12);
		/* away first: a half-deleted directory must not look like a checkpoint */
		if (!mkdtemp(old) || rename(p, old) != 0) {
			rc = sk_fail(_("%s: cannot remove: %s"), p, strerror(errno));
			rmdir(old);
			free(p);
			free(old);
			break;
		}
		sk_fsync_dir(run_dir);
		if (sk_rmtree(old) == 0) {
			removed++;
			logf_(log, ctx, _("removed %s (keeping the newest %d)"), p, keep);
		}
		free(p);
		free(old);
	}
	free_entries(e, (size_t)n);
	return rc ? -1 : removed;
}
