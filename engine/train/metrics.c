/* metrics.jsonl writer, resume cut and reader (metrics.h). */
#include "engine/train/metrics.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/format/atomic_dir.h"
#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/i18n.h"

#define MAX_FILE ((uint64_t)1 << 30)
#define MAX_LINE ((size_t)1 << 20)

struct sk_metrics_log {
	FILE *fp;
	char *path;
	char *dir;
	int failed;
};

/* ---- line reading, bounded ---- */

typedef struct {
	FILE *fp;
	char *buf;
	size_t len;
	int too_long, has_nl;
} line_reader;

/* Next line into r->buf (without the newline); 0 at end of file. */
static int next_line(line_reader *r)
{
	r->len = 0;
	r->too_long = 0;
	r->has_nl = 0;
	int c, any = 0;
	while ((c = getc_unlocked(r->fp)) != EOF) {
		any = 1;
		if (c == '\n') {
			r->has_nl = 1;
			break;
		}
		if (r->len < MAX_LINE)
			r->buf[r->len++] = (char)c;
		else
			r->too_long = 1;
	}
	r->buf[r->len] = '\0';
	return any;
}

/* Parses one line: 1 and *o (an object with a valid type and step), or 0. */
static int parse_record(const char *line, size_t len, json_t **o, int *is_eval, int64_t *step)
{
	*o = NULL;
	json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return 0;
	}
	const char *type = json_string_value(json_object_get(j, "type"));
	json_t *s = json_object_get(j, "step");
	if (!type || (strcmp(type, "train") != 0 && strcmp(type, "eval") != 0) || !json_is_integer(s) ||
	    json_integer_value(s) < 0) {
		json_decref(j);
		return 0;
	}
	*is_eval = type[0] == 'e';
	*step = json_integer_value(s);
	*o = j;
	return 1;
}

static int open_reader(const char *path, line_reader *r)
{
	memset(r, 0, sizeof *r);
	r->fp = fopen(path, "rb");
	if (!r->fp)
		return sk_fail("%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fileno(r->fp), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(r->fp);
		return sk_fail(_("%s: not a regular file"), path);
	}
	if ((uint64_t)st.st_size > MAX_FILE) {
		fclose(r->fp);
		return sk_fail(_("%s: file too large (%lld bytes)"), path, (long long)st.st_size);
	}
	r->buf = malloc(MAX_LINE + 1);
	if (!r->buf) {
		fclose(r->fp);
		return sk_fail(_("%s: out of memory"), path);
	}
	return 0;
}

static void close_reader(line_reader *r)
{
	if (r->fp)
		fclose(r->fp);
	free(r->buf);
	memset(r, 0, sizeof *r);
}

/* ---- writer ---- */

/* Rewrites the log keeping lines with step <= keep (keep < 0: none). */
static int cut_log(const char *path, int64_t keep)
{
	if (!sk_file_exists(path))
		return 0;
	line_reader r;
	if (open_reader(path, &r))
		return -1;
	char *out = NULL;
	size_t olen = 0, ocap = 0;
	int changed = 0, rc = 0;
	while (next_line(&r)) {
		json_t *o;
		int is_eval = 0;
		int64_t step = 0;
		int ok = !r.too_long && parse_record(r.buf, r.len, &o, &is_eval, &step);
		json_decref(ok ? o : NULL);
		if (!ok || step > keep || keep < 0 || !r.has_nl) {
			changed = 1;
			if (!ok || step > keep || keep < 0)
				continue;
		}
		if (olen + r.len + 2 > ocap) {
			size_t nc = ocap ? ocap * 2 : 65536;
			while (nc < olen + r.len + 2)
				nc *= 2;
			char *no = realloc(out, nc);
			if (!no) {
				rc = sk_fail(_("%s: out of memory"), path);
				break;
			}
			out = no;
			ocap = nc;
		}
		memcpy(out + olen, r.buf, r.len);
		olen += r.len;
		out[olen++] = '\n';
	}
	if (!rc && ferror(r.fp))
		rc = sk_fail(_("%s: read error"), path);
	close_reader(&r);
	if (!rc && changed)
		rc = sk_write_file_atomic(path, out ? out : "", olen);
	free(out);
	return rc;
}

sk_metrics_log *sk_metrics_open(const char *run_dir, int64_t keep_through_step)
{
	sk_metrics_log *m = calloc(1, sizeof *m);
	if (!m || !(m->path = sk_path_join(run_dir, SK_METRICS_FILE)) || !(m->dir = strdup(run_dir))) {
		sk_fail(_("%s: out of memory"), run_dir);
		goto fail;
	}
	if (sk_mkdirs(run_dir, 0755) || cut_log(m->path, keep_through_step))
		goto fail;
	m->fp = fopen(m->path, "ab");
	if (!m->fp) {
		sk_fail("%s: %s", m->path, strerror(errno));
		goto fail;
	}
	return m;
fail:
	if (m) {
		free(m->path);
		free(m->dir);
		free(m);
	}
	return NULL;
}

static json_t *num(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

int sk_metrics_append(sk_metrics_log *m, const sk_metric_rec *r)
{
	json_t *o = json_object();
	int bad = !o;
	if (!bad) {
		bad |= json_object_set_new(o, "type", json_string(r->is_eval ? "eval" : "train"));
		bad |= json_object_set_new(o, "step", json_integer(r->step));
		bad |= json_object_set_new(o, "epoch", num(r->epoch));
		if (r->is_eval) {
			bad |= json_object_set_new(o, "eval_loss", num(r->eval_loss));
			bad |= json_object_set_new(o, "eval_tokens", json_integer(r->eval_tokens));
		} else {
			bad |= json_object_set_new(o, "loss", num(r->loss));
			bad |= json_object_set_new(o, "lr", num(r->lr));
			bad |= json_object_set_new(o, "grad_norm", num(r->grad_norm));
			bad |= json_object_set_new(o, "tokens", json_integer(r->tokens));
			bad |= json_object_set_new(o, "tokens_per_s", num(r->tokens_per_s));
		}
		bad |= json_object_set_new(o, "elapsed_s", num(r->elapsed_s));
		if (!r->is_eval && r->nmem) {
			json_t *mem = json_object();
			bad |= !mem;
			for (size_t i = 0; mem && i < r->nmem; i++)
				bad |= json_object_set_new(mem, r->mem[i].name ? r->mem[i].name : "?",
							   json_integer((json_int_t)r->mem[i].bytes));
			bad |= json_object_set_new(o, "memory", mem);
		}
	}
	char *line = bad ? NULL : json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
	json_decref(o);
	if (!line)
		return sk_fail(_("%s: out of memory"), m->path);
	size_t n = strlen(line);
	int rc = 0;
	if (r->step < 0) {
		rc = sk_fail(_("%s: negative step"), m->path);
	} else {
		line[n] = '\n'; /* in place of the NUL: the line and its end in one write */
		rc = sk_fwrite_all(m->fp, m->path, line, n + 1);
		errno = 0;
		if (rc == 0 && fflush(m->fp) != 0)
			rc = sk_fail_write(m->path, errno);
	}
	if (rc)
		m->failed = 1;
	free(line);
	return rc;
}

int sk_metrics_sync(sk_metrics_log *m)
{
	errno = 0;
	if (fflush(m->fp) != 0 || fsync(fileno(m->fp)) != 0) {
		m->failed = 1;
		return sk_fail_write(m->path, errno);
	}
	return sk_fsync_dir(m->dir);
}

int sk_metrics_close(sk_metrics_log *m)
{
	if (!m)
		return 0;
	int rc = sk_metrics_sync(m);
	errno = 0;
	if (fclose(m->fp) != 0 && !rc)
		rc = sk_fail_write(m->path, errno);
	if (m->failed && !rc)
		rc = sk_fail(_("%s: a write had failed"), m->path);
	free(m->path);
	free(m->dir);
	free(m);
	return rc;
}

/* ---- reader ---- */

static double get_num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

static int grow(void **p, size_t elem, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 256;
	void *np = realloc(*p, nc * elem);
	if (!np)
		return -1;
	*p = np;
	*cap = nc;
	return 0;
}

void sk_metrics_series_free(sk_metrics_series *s)
{
	free(s->step);
	free(s->loss);
	free(s->lr);
	free(s->grad_norm);
	free(s->eval_step);
	free(s->eval_loss);
	memset(s, 0, sizeof *s);
}

int sk_metrics_read(const char *path, sk_metrics_series *s)
{
	memset(s, 0, sizeof *s);
	line_reader r;
	if (open_reader(path, &r))
		return -1;
	size_t cap[6] = { 0 };
	int rc = 0;
	while (next_line(&r)) {
		json_t *o;
		int is_eval = 0;
		int64_t step = 0;
		if (r.len == 0 && r.has_nl)
			continue; /* blank line */
		if (r.too_long || !parse_record(r.buf, r.len, &o, &is_eval, &step)) {
			s->bad_lines++;
			continue;
		}
		if (is_eval) {
			if (grow((void **)&s->eval_step, sizeof *s->eval_step, &cap[4], s->neval + 1) ||
			    grow((void **)&s->eval_loss, sizeof *s->eval_loss, &cap[5], s->neval + 1))
				rc = -1;
			else {
				s->eval_step[s->neval] = step;
				s->eval_loss[s->neval] = get_num(o, "eval_loss");
				s->neval++;
			}
		} else {
			if (grow((void **)&s->step, sizeof *s->step, &cap[0], s->n + 1) ||
			    grow((void **)&s->loss, sizeof *s->loss, &cap[1], s->n + 1) ||
			    grow((void **)&s->lr, sizeof *s->lr, &cap[2], s->n + 1) ||
			    grow((void **)&s->grad_norm, sizeof *s->grad_norm, &cap[3], s->n + 1))
				rc = -1;
			else {
				s->step[s->n] = step;
				s->loss[s->n] = get_num(o, "loss");
				s->lr[s->n] = get_num(o, "lr");
				s->grad_norm[s->n] = get_num(o, "grad_norm");
				s->n++;
			}
		}
		json_decref(o);
		if (rc) {
			sk_fail(_("%s: out of memory"), path);
			break;
		}
	}
	if (!rc && ferror(r.fp))
		rc = sk_fail(_("%s: read error"), path);
	close_reader(&r);
	if (rc)
		sk_metrics_series_free(s);
	return rc;
}
