/* sk_compare: compares a tensor with a reference for the shell tests, so
 * that they need no NumPy. Reads .npy files and safetensors tensors with
 * sokhan's own readers (the readers have their own tests against files the
 * reference libraries wrote). Prints one line and exits 0 when every check
 * asked for passes, 1 when one fails, 2 on a usage or read error. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/format/dtype.h"
#include "engine/format/npy.h"
#include "engine/format/safetensors.h"

static const char usage[] =
	"Usage: sk_compare [OPTION]... A B\n"
	"Compares tensor A with the reference B: same shape, then the checks asked for.\n"
	"A and B are FILE.npy or FILE.safetensors:NAME (one tensor of the file).\n"
	"\n"
	"  --rel-l2 TOL      ||A - B|| / ||B|| < TOL\n"
	"  --min-rel-l2 TOL  ||A - B|| / ||B|| >= TOL (A differs from B at least that much)\n"
	"  --max-abs TOL     max |A - B| <= TOL\n"
	"  --argmax FRAC     the argmax of at least FRAC of the rows (last axis) agree\n"
	"  --dtype TYPE      A is stored as TYPE (F32, I32, BF16, F16, F64, I64)\n"
	"  --each            A and B are safetensors files holding the same tensor names;\n"
	"                    the checks apply to every tensor\n"
	"  --rename FROM=TO  with --each: the tensor of B named FROM... is TO... in A\n"
	"\n"
	"Prints one line: \"sk_compare: ok: ...\" or \"sk_compare: FAIL: ...\".\n"
	"Exit status: 0 every check passed, 1 a check failed, 2 usage or read error.\n";

typedef struct {
	double rel_l2, min_rel_l2, max_abs, argmax; /* < 0: not asked for */
	const char *dtype;
	const char *rename_from, *rename_to;
} checks;

/* One tensor as doubles, with its stored type's name. */
typedef struct {
	char type[8];
	int ndim;
	int64_t shape[SK_MAX_DIMS];
	size_t count;
	double *v;
} tensor;

static void tensor_free(tensor *t)
{
	free(t->v);
	t->v = NULL;
}

/* Converts a safetensors view; -1 for a type this tool does not read. */
static int from_view(const sk_tensor_view *tv, tensor *t)
{
	const unsigned char *p = tv->data;
	size_t n = (size_t)sk_tensor_view_numel(tv);
	snprintf(t->type, sizeof t->type, "%s", sk_dtype_name(tv->dtype));
	t->ndim = tv->ndim;
	memcpy(t->shape, tv->shape, sizeof t->shape);
	t->count = n;
	t->v = malloc((n ? n : 1) * sizeof *t->v);
	if (!t->v)
		return sk_fail("out of memory");
	for (size_t i = 0; i < n; i++) {
		/* the data may be unaligned: copy each element out */
		switch (tv->dtype) {
		case SK_DT_F32: {
			float f;
			memcpy(&f, p + 4 * i, 4);
			t->v[i] = f;
			break;
		}
		case SK_DT_F64:
			memcpy(&t->v[i], p + 8 * i, 8);
			break;
		case SK_DT_BF16:
		case SK_DT_F16: {
			uint16_t h;
			memcpy(&h, p + 2 * i, 2);
			t->v[i] = tv->dtype == SK_DT_BF16 ? sk_bf16_to_f32(h) : sk_f16_to_f32(h);
			break;
		}
		case SK_DT_I32: {
			int32_t x;
			memcpy(&x, p + 4 * i, 4);
			t->v[i] = x;
			break;
		}
		case SK_DT_I64: {
			int64_t x;
			memcpy(&x, p + 8 * i, 8);
			t->v[i] = (double)x;
			break;
		}
		default:
			tensor_free(t);
			return sk_fail("%s: tensor type %s is not compared", tv->name, sk_dtype_name(tv->dtype));
		}
	}
	return 0;
}

static int load_npy(const char *path, tensor *t)
{
	sk_npy a;
	if (sk_npy_read(path, &a) != 0)
		return -1;
	snprintf(t->type, sizeof t->type, "%s", a.dtype == SK_NPY_F32 ? "F32" : "I32");
	t->ndim = a.ndim;
	memcpy(t->shape, a.shape, sizeof(int64_t) * (size_t)a.ndim);
	t->count = a.count;
	t->v = malloc((a.count ? a.count : 1) * sizeof *t->v);
	if (!t->v) {
		sk_npy_free(&a);
		return sk_fail("out of memory");
	}
	for (size_t i = 0; i < a.count; i++)
		t->v[i] = a.dtype == SK_NPY_F32 ? ((const float *)a.data)[i] : ((const int32_t *)a.data)[i];
	sk_npy_free(&a);
	return 0;
}

/* SPEC is FILE.npy or FILE:NAME. */
static int load(const char *spec, tensor *t)
{
	const char *colon = strrchr(spec, ':');
	if (!colon || !strstr(spec, ".safetensors:"))
		return load_npy(spec, t);
	char path[4096];
	snprintf(path, sizeof path, "%.*s", (int)(colon - spec), spec);
	sk_st_file *f = sk_st_open(path);
	if (!f)
		return -1;
	const sk_tensor_view *tv = sk_st_find(f, colon + 1);
	int rc = tv ? from_view(tv, t) : sk_fail("%s: no tensor named %s", path, colon + 1);
	sk_st_close(f);
	return rc;
}

static void shape_str(const tensor *t, char *buf, size_t cap)
{
	size_t n = (size_t)snprintf(buf, cap, "[");
	for (int i = 0; i < t->ndim && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
	if (n < cap)
		snprintf(buf + n, cap - n, "]");
}

typedef struct {
	double rel_l2, max_abs;
	int64_t rows, rows_agree;
} metrics;

/* Relative L2 error, largest absolute difference, argmax agreement by row. */
static metrics measure(const tensor *a, const tensor *b)
{
	metrics m = { 0, 0, 0, 0 };
	double d2 = 0, b2 = 0;
	for (size_t i = 0; i < a->count; i++) {
		double d = a->v[i] - b->v[i];
		d2 += d * d;
		b2 += b->v[i] * b->v[i];
		if (!(fabs(d) <= m.max_abs)) /* NaN sticks */
			m.max_abs = fabs(d);
	}
	m.rel_l2 = b2 > 0 ? sqrt(d2 / b2) : (d2 > 0 ? INFINITY : sqrt(d2));
	size_t len = a->ndim > 0 ? (size_t)a->shape[a->ndim - 1] : 1;
	if (len == 0)
		return m;
	for (size_t r = 0; r < a->count / len; r++) {
		const double *x = a->v + r * len, *y = b->v + r * len;
		size_t ia = 0, ib = 0;
		for (size_t j = 1; j < len; j++) {
			if (x[j] > x[ia])
				ia = j;
			if (y[j] > y[ib])
				ib = j;
		}
		m.rows++;
		m.rows_agree += ia == ib;
	}
	return m;
}

/* Checks one pair; writes what failed (or "") to why. 1 passed, 0 failed. */
static int judge(const checks *c, const tensor *a, const tensor *b, metrics *m, char *why, size_t cap)
{
	char sa[96], sb[96];
	why[0] = '\0';
	if (c->dtype && strcmp(c->dtype, a->type) != 0) {
		snprintf(why, cap, "stored as %s, want %s", a->type, c->dtype);
		return 0;
	}
	int same = a->ndim == b->ndim;
	for (int i = 0; same && i < a->ndim; i++)
		same = a->shape[i] == b->shape[i];
	if (!same) {
		shape_str(a, sa, sizeof sa);
		shape_str(b, sb, sizeof sb);
		snprintf(why, cap, "shape %s, want %s", sa, sb);
		return 0;
	}
	*m = measure(a, b);
	if (c->rel_l2 >= 0 && !(m->rel_l2 < c->rel_l2))
		snprintf(why, cap, "rel L2 %.3g, want < %g", m->rel_l2, c->rel_l2);
	else if (c->min_rel_l2 >= 0 && !(m->rel_l2 >= c->min_rel_l2))
		snprintf(why, cap, "rel L2 %.3g, want >= %g", m->rel_l2, c->min_rel_l2);
	else if (c->max_abs >= 0 && !(m->max_abs <= c->max_abs))
		snprintf(why, cap, "max abs %.3g, want <= %g", m->max_abs, c->max_abs);
	else if (c->argmax >= 0 && !((double)m->rows_agree >= c->argmax * (double)m->rows))
		snprintf(why, cap, "argmax agrees on %lld of %lld rows, want at least %g%%", (long long)m->rows_agree,
		         (long long)m->rows, 100 * c->argmax);
	return why[0] == '\0';
}

static int compare_one(const checks *c, const char *spec_a, const char *spec_b)
{
	tensor a = { 0 }, b = { 0 };
	if (load(spec_a, &a) != 0 || load(spec_b, &b) != 0) {
		fprintf(stderr, "sk_compare: error: %s\n", sk_error());
		tensor_free(&a);
		return 2;
	}
	metrics m = { 0, 0, 0, 0 };
	char why[256], sh[96];
	int ok = judge(c, &a, &b, &m, why, sizeof why);
	shape_str(&a, sh, sizeof sh);
	if (ok)
		printf("sk_compare: ok: %s %s, rel L2 %.3g, max abs %.3g, argmax %lld/%lld rows\n", sh, a.type, m.rel_l2,
		       m.max_abs, (long long)m.rows_agree, (long long)m.rows);
	else
		printf("sk_compare: FAIL: %s (%s, %s)\n", why, spec_a, spec_b);
	tensor_free(&a);
	tensor_free(&b);
	return ok ? 0 : 1;
}

/* --each: every tensor of B against A's tensor of the same (renamed) name. */
static int compare_each(const checks *c, const char *path_a, const char *path_b)
{
	sk_st_file *fa = sk_st_open(path_a), *fb = fa ? sk_st_open(path_b) : NULL;
	if (!fa || !fb) {
		fprintf(stderr, "sk_compare: error: %s\n", sk_error());
		sk_st_close(fa);
		return 2;
	}
	int rc = 0, nfail = 0;
	size_t n = sk_st_count(fb);
	double worst = -1;
	char worst_name[512] = "", first_fail[1024] = "";
	for (size_t i = 0; i < n && rc != 2; i++) {
		const sk_tensor_view *vb = sk_st_tensor(fb, i);
		char name[512];
		size_t lf = c->rename_from ? strlen(c->rename_from) : 0;
		if (lf && strncmp(vb->name, c->rename_from, lf) == 0)
			snprintf(name, sizeof name, "%s%s", c->rename_to, vb->name + lf);
		else
			snprintf(name, sizeof name, "%s", vb->name);
		const sk_tensor_view *va = sk_st_find(fa, name);
		char why[256] = "";
		tensor a = { 0 }, b = { 0 };
		metrics m = { 0, 0, 0, 0 };
		if (!va) {
			snprintf(why, sizeof why, "missing");
		} else if (from_view(va, &a) != 0 || from_view(vb, &b) != 0) {
			fprintf(stderr, "sk_compare: error: %s\n", sk_error());
			rc = 2;
		} else if (judge(c, &a, &b, &m, why, sizeof why) && !(m.rel_l2 <= worst)) {
			worst = m.rel_l2;
			snprintf(worst_name, sizeof worst_name, "%s", name);
		}
		if (why[0] && nfail++ == 0)
			snprintf(first_fail, sizeof first_fail, "%s: %s", name, why);
		tensor_free(&a);
		tensor_free(&b);
	}
	size_t na = sk_st_count(fa);
	sk_st_close(fa);
	sk_st_close(fb);
	if (rc == 2)
		return 2;
	if (nfail) {
		printf("sk_compare: FAIL: %s (%d of %zu tensors fail)\n", first_fail, nfail, n);
		return 1;
	}
	if (na != n) {
		printf("sk_compare: FAIL: %s holds %zu tensors, want %zu\n", path_a, na, n);
		return 1;
	}
	printf("sk_compare: ok: %zu tensors, worst rel L2 %.3g (%s)\n", n, worst, worst_name);
	return 0;
}

/* A non-negative number, or -1 with a message. */
static double number(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0)) {
		fprintf(stderr, "sk_compare: %s needs a non-negative number, not '%s'\n", opt, s);
		return -1;
	}
	return v;
}

int main(int argc, char **argv)
{
	checks c = { -1, -1, -1, -1, NULL, NULL, NULL };
	int each = 0, i = 1;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		const char *o = argv[i];
		double *slot = !strcmp(o, "--rel-l2")       ? &c.rel_l2
		               : !strcmp(o, "--min-rel-l2") ? &c.min_rel_l2
		               : !strcmp(o, "--max-abs")    ? &c.max_abs
		               : !strcmp(o, "--argmax")     ? &c.argmax
		                                            : NULL;
		if (!strcmp(o, "--help")) {
			fputs(usage, stdout);
			return 0;
		} else if (!strcmp(o, "--each")) {
			each = 1;
		} else if ((slot || !strcmp(o, "--dtype") || !strcmp(o, "--rename")) && i + 1 < argc) {
			const char *v = argv[++i];
			if (slot && (*slot = number(o, v)) < 0)
				return 2;
			if (!strcmp(o, "--dtype"))
				c.dtype = v;
			if (!strcmp(o, "--rename")) {
				const char *eq = strchr(v, '=');
				if (!eq) {
					fprintf(stderr, "sk_compare: --rename needs FROM=TO\n");
					return 2;
				}
				static char from[512];
				snprintf(from, sizeof from, "%.*s", (int)(eq - v), v);
				c.rename_from = from;
				c.rename_to = eq + 1;
			}
		} else {
			fprintf(stderr, "sk_compare: unknown option or missing value: %s\n%s", o, usage);
			return 2;
		}
	}
	if (argc - i != 2 || (c.rename_from && !each)) {
		fputs(usage, stderr);
		return 2;
	}
	return each ? compare_each(&c, argv[i], argv[i + 1]) : compare_one(&c, argv[i], argv[i + 1]);
}
