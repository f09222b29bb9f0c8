/* .npy reader and writer: an ASCII header holding a Python dict literal
 * ({'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }) after a
 * magic string and a version, then the raw little-endian values. */
#include "engine/format/npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/i18n.h"

static const char sk_npy_magic[6] = { '\x93', 'N', 'U', 'M', 'P', 'Y' };

static int sk_host_is_le(void)
{
	const uint16_t x = 1;
	unsigned char b;
	memcpy(&b, &x, 1);
	return b == 1;
}

static void sk_swap4(void *p, size_t count)
{
	unsigned char *b = p;
	for (size_t i = 0; i < count; i++, b += 4) {
		unsigned char t = b[0];
		b[0] = b[3];
		b[3] = t;
		t = b[1];
		b[1] = b[2];
		b[2] = t;
	}
}

/* count = product of the shape, with overflow checks (and count * 4 fits). */
static int sk_npy_count(const char *name, int ndim, const int64_t *shape, size_t *count)
{
	size_t c = 1;
	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 0)
			return sk_fail(_("%s: negative dimension %lld"), name, (long long)shape[i]);
		if (shape[i] != 0 && c > (SIZE_MAX / 4) / (uint64_t)shape[i])
			return sk_fail(_("%s: the array is too large"), name);
		c *= (size_t)shape[i];
	}
	*count = c;
	return 0;
}

int sk_npy_write(const char *path, sk_npy_dtype dtype, const void *data, int ndim, const int64_t *shape)
{
	if (ndim < 0 || ndim > SK_NPY_MAX_DIMS)
		return sk_fail(_("%s: %d dimensions (at most %d)"), path, ndim, SK_NPY_MAX_DIMS);
	size_t count;
	if (sk_npy_count(path, ndim, shape, &count) != 0)
		return -1;
	char hdr[512];
	int o = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (",
	                 dtype == SK_NPY_F32 ? "<f4" : "<i4");
	for (int i = 0; i < ndim; i++)
		o += snprintf(hdr + o, sizeof hdr - (size_t)o, "%s%lld", i ? ", " : "", (long long)shape[i]);
	/* a 1-tuple needs its comma, as Python writes it */
	o += snprintf(hdr + o, sizeof hdr - (size_t)o, "%s), }", ndim == 1 ? "," : "");
	/* pad with spaces so the data starts at a multiple of 64, header ends in \n */
	size_t total = 10 + (size_t)o + 1;
	size_t pad = (64 - total % 64) % 64;
	memset(hdr + o, ' ', pad);
	hdr[(size_t)o + pad] = '\n';
	size_t hlen = (size_t)o + pad + 1;

	unsigned char pre[10];
	memcpy(pre, sk_npy_magic, 6);
	pre[6] = 1;
	pre[7] = 0;
	pre[8] = (unsigned char)(hlen & 0xff);
	pre[9] = (unsigned char)(hlen >> 8);

	sk_atomic_file af;
	if (sk_atomic_open(&af, path) != 0)
		return -1;
	int bad = sk_fwrite_all(af.fp, path, pre, sizeof pre) || sk_fwrite_all(af.fp, path, hdr, hlen);
	if (!bad && sk_host_is_le()) {
		bad = sk_fwrite_all(af.fp, path, data, 4 * count);
	} else if (!bad) {
		const unsigned char *p = data;
		for (size_t i = 0; i < count && !bad; i++) {
			unsigned char b[4] = { p[4 * i + 3], p[4 * i + 2], p[4 * i + 1], p[4 * i] };
			bad = sk_fwrite_all(af.fp, path, b, 4);
		}
	}
	if (bad) {
		sk_atomic_abort(&af);
		return -1;
	}
	return sk_atomic_commit(&af);
}

int sk_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape)
{
	return sk_npy_write(path, SK_NPY_F32, data, ndim, shape);
}

int sk_npy_write_i32(const char *path, const int32_t *data, int ndim, const int64_t *shape)
{
	return sk_npy_write(path, SK_NPY_I32, data, ndim, shape);
}

/* --- header parsing: a small Python-literal scanner over [p, end) --- */

typedef struct {
	const char *p, *end, *name;
} sk_npy_lex;

static void sk_lex_ws(sk_npy_lex *l)
{
	while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r'))
		l->p++;
}

static int sk_lex_char(sk_npy_lex *l, char c)
{
	sk_lex_ws(l);
	if (l->p < l->end && *l->p == c) {
		l->p++;
		return 1;
	}
	return 0;
}

/* A quoted string (no escapes: none of the header's strings need them). */
static int sk_lex_str(sk_npy_lex *l, const char **s, size_t *n)
{
	sk_lex_ws(l);
	if (l->p >= l->end || (*l->p != '\'' && *l->p != '"'))
		return sk_fail(_("%s: bad .npy header: expected a string"), l->name);
	char q = *l->p++;
	const char *start = l->p;
	while (l->p < l->end && *l->p != q) {
		if (*l->p == '\\')
			return sk_fail(_("%s: bad .npy header: escapes are not supported"), l->name);
		l->p++;
	}
	if (l->p >= l->end)
		return sk_fail(_("%s: bad .npy header: unterminated string"), l->name);
	*s = start;
	*n = (size_t)(l->p - start);
	l->p++;
	return 0;
}

static int sk_lex_word(sk_npy_lex *l, const char *w)
{
	sk_lex_ws(l);
	size_t n = strlen(w);
	if ((size_t)(l->end - l->p) >= n && !memcmp(l->p, w, n)) {
		l->p += n;
		return 1;
	}
	return 0;
}

static int sk_lex_shape(sk_npy_lex *l, sk_npy *a)
{
	if (!sk_lex_char(l, '('))
		return sk_fail(_("%s: bad .npy header: shape is not a tuple"), l->name);
	a->ndim = 0;
	for (;;) {
		if (sk_lex_char(l, ')'))
			return 0;
		if (a->ndim >= SK_NPY_MAX_DIMS)
			return sk_fail(_("%s: more than %d dimensions"), l->name, SK_NPY_MAX_DIMS);
		sk_lex_ws(l);
		int64_t v = 0;
		int digits = 0;
		while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
			if (v > (INT64_MAX - 9) / 10)
				return sk_fail(_("%s: dimension too large"), l->name);
			v = v * 10 + (*l->p - '0');
			l->p++;
			digits++;
		}
		if (!digits)
			return sk_fail(_("%s: bad .npy header: shape holds a non-integer"), l->name);
		a->shape[a->ndim++] = v;
		if (!sk_lex_char(l, ',')) {
			if (!sk_lex_char(l, ')'))
				return sk_fail(_("%s: bad .npy header: shape is not a tuple"), l->name);
			return 0;
		}
	}
}

static int sk_npy_header(sk_npy_lex *l, sk_npy *a)
{
	int have_descr = 0, have_order = 0, have_shape = 0;
	if (!sk_lex_char(l, '{'))
		return sk_fail(_("%s: bad .npy header: not a dict"), l->name);
	for (;;) {
		if (sk_lex_char(l, '}'))
			break;
		const char *k;
		size_t kn;
		if (sk_lex_str(l, &k, &kn) != 0)
			return -1;
		if (!sk_lex_char(l, ':'))
			return sk_fail(_("%s: bad .npy header: expected ':'"), l->name);
		if (kn == 5 && !memcmp(k, "descr", 5)) {
			const char *v;
			size_t vn;
			if (sk_lex_str(l, &v, &vn) != 0)
				return -1;
			if (vn == 3 && !memcmp(v, "<f4", 3))
				a->dtype = SK_NPY_F32;
			else if (vn == 3 && !memcmp(v, "<i4", 3))
				a->dtype = SK_NPY_I32;
			else
				return sk_fail(_("%s: unsupported dtype '%.*s' (only <f4 and <i4)"), l->name,
				               (int)(vn > 32 ? 32 : vn), v);
			have_descr = 1;
		} else if (kn == 13 && !memcmp(k, "fortran_order", 13)) {
			if (sk_lex_word(l, "True"))
				return sk_fail(_("%s: Fortran-order arrays are not supported"), l->name);
			if (!sk_lex_word(l, "False"))
				return sk_fail(_("%s: bad .npy header: fortran_order is not a boolean"), l->name);
			have_order = 1;
		} else if (kn == 5 && !memcmp(k, "shape", 5)) {
			if (sk_lex_shape(l, a) != 0)
				return -1;
			have_shape = 1;
		} else {
			return sk_fail(_("%s: bad .npy header: unknown key '%.*s'"), l->name,
			               (int)(kn > 32 ? 32 : kn), k);
		}
		if (!sk_lex_char(l, ',')) {
			if (!sk_lex_char(l, '}'))
				return sk_fail(_("%s: bad .npy header: expected ',' or '}'"), l->name);
			break;
		}
	}
	sk_lex_ws(l);
	if (l->p != l->end)
		return sk_fail(_("%s: bad .npy header: text after the dict"), l->name);
	if (!have_descr || !have_order || !have_shape)
		return sk_fail(_("%s: bad .npy header: descr, fortran_order or shape is missing"), l->name);
	return 0;
}

int sk_npy_parse(const void *buf, size_t len, const char *name, sk_npy *out)
{
	memset(out, 0, sizeof *out);
	const unsigned char *b = buf;
	if (len < 10 || memcmp(b, sk_npy_magic, 6) != 0)
		return sk_fail(_("%s: not a .npy file"), name);
	size_t hlen, hstart;
	if (b[6] == 1) {
		hlen = (size_t)b[8] | (size_t)b[9] << 8;
		hstart = 10;
	} else if (b[6] == 2 || b[6] == 3) {
		if (len < 12)
			return sk_fail(_("%s: truncated .npy header"), name);
		hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
		hstart = 12;
	} else {
		return sk_fail(_("%s: unsupported .npy version %u.%u"), name, b[6], b[7]);
	}
	if (hlen > len - hstart)
		return sk_fail(_("%s: truncated .npy header"), name);
	sk_npy_lex l = { (const char *)b + hstart, (const char *)b + hstart + hlen, name };
	sk_npy a = { 0 };
	if (sk_npy_header(&l, &a) != 0)
		return -1;
	if (sk_npy_count(name, a.ndim, a.shape, &a.count) != 0)
		return -1;
	size_t data_len = len - hstart - hlen;
	if (data_len != a.count * 4)
		return sk_fail(_("%s: %zu bytes of data where the shape needs %zu"), name, data_len, a.count * 4);
	a.data = malloc(a.count ? a.count * 4 : 1);
	if (!a.data)
		return sk_fail(_("%s: out of memory"), name);
	if (a.count)
		memcpy(a.data, b + hstart + hlen, a.count * 4);
	if (!sk_host_is_le())
		sk_swap4(a.data, a.count);
	*out = a;
	return 0;
}

int sk_npy_read(const char *path, sk_npy *out)
{
	memset(out, 0, sizeof *out);
	sk_mapping m;
	if (sk_map_file(path, &m) != 0)
		return -1;
	int rc = sk_npy_parse(m.data ? m.data : "", m.len, path, out);
	sk_unmap_file(&m);
	return rc;
}

void sk_npy_free(sk_npy *a)
{
	if (!a)
		return;
	free(a->data);
	a->data = NULL;
	a->count = 0;
}
