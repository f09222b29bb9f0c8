/* Writing a safetensors file the way the reference writer does (formats.md
 * §4.4), so the output is byte-identical to safetensors' own for the same
 * tensors: compact header with __metadata__ {"format":"pt"}, tensors sorted
 * by dtype rank (largest elements first) then name, header padded with
 * spaces to a multiple of 8, written atomically. */
#include "engine/format/safetensors.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/i18n.h"
#include "engine/format/safetensors_dtypes.h"

typedef struct {
	const sk_st_entry *e;
	const sk_st_dtype_info *di;
	uint64_t nbytes;
} sk_st_wentry;

static int sk_st_worder(const void *a, const void *b)
{
	const sk_st_wentry *x = a, *y = b;
	if (x->di->rank != y->di->rank)
		return x->di->rank > y->di->rank ? -1 : 1;
	return strcmp(x->e->name, y->e->name);
}

static int sk_st_wname(const void *a, const void *b)
{
	const sk_st_wentry *x = a, *y = b;
	return strcmp(x->e->name, y->e->name);
}

static int sk_st_check_entry(const char *path, const sk_st_entry *e, sk_st_wentry *w)
{
	if (!e->name || !*e->name || strcmp(e->name, "__metadata__") == 0)
		return sk_fail(_("%s: invalid tensor name '%s'"), path, e->name ? e->name : "");
	w->e = e;
	w->di = sk_st_dtype_by_sk(e->dtype);
	if (!w->di)
		return sk_fail(_("%s: tensor '%s': dtype %s cannot be stored in safetensors"), path, e->name,
			       sk_dtype_name(e->dtype));
	if (e->ndim < 0 || e->ndim > SK_MAX_DIMS)
		return sk_fail(_("%s: tensor '%s': bad rank %d"), path, e->name, e->ndim);
	uint64_t count = 1;
	for (int i = 0; i < e->ndim; i++) {
		if (e->shape[i] < 0)
			return sk_fail(_("%s: tensor '%s': negative dimension"), path, e->name);
		uint64_t d = (uint64_t)e->shape[i];
		if (d != 0 && count > UINT64_MAX / d)
			return sk_fail(_("%s: tensor '%s': too many elements"), path, e->name);
		count *= d;
	}
	uint64_t bytes_per = (uint64_t)w->di->bits / 8;
	if (count > (uint64_t)INT64_MAX / bytes_per)
		return sk_fail(_("%s: tensor '%s': too many elements"), path, e->name);
	w->nbytes = count * bytes_per;
	if (w->nbytes && !e->data)
		return sk_fail(_("%s: tensor '%s': no data"), path, e->name);
	return 0;
}

/* The compact JSON header (unpadded), malloc'd; NULL on error. */
static char *sk_st_header(const char *path, const sk_st_wentry *w, size_t n)
{
	json_t *root = json_object(), *meta = json_object();
	char *out = NULL;
	if (!root || !meta || json_object_set_new(meta, "format", json_string("pt")) ||
	    json_object_set_new(root, "__metadata__", meta)) {
		if (!root)
			json_decref(meta);
		sk_fail(_("%s: out of memory"), path);
		goto out;
	}
	uint64_t off = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *t = json_object(), *shape = json_array(), *offs = json_array();
		int bad = !t || !shape || !offs;
		for (int d = 0; !bad && d < w[i].e->ndim; d++)
			bad = json_array_append_new(shape, json_integer(w[i].e->shape[d]));
		if (!bad)
			bad = json_array_append_new(offs, json_integer((json_int_t)off)) ||
			      json_array_append_new(offs, json_integer((json_int_t)(off + w[i].nbytes)));
		if (!bad)
			bad = json_object_set_new(t, "dtype", json_string(w[i].di->name)) ||
			      json_object_set_new(t, "shape", shape) ||
			      json_object_set_new(t, "data_offsets", offs);
		else {
			json_decref(shape);
			json_decref(offs);
		}
		if (bad) {
			json_decref(t);
			sk_fail(_("%s: out of memory"), path);
			goto out;
		}
		/* Fails on a name that is not valid UTF-8. */
		if (json_object_set_new(root, w[i].e->name, t)) {
			sk_fail(_("%s: tensor name '%s' is not valid UTF-8"), path, w[i].e->name);
			goto out;
		}
		off += w[i].nbytes;
	}
	out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!out)
		sk_fail(_("%s: out of memory"), path);
out:
	json_decref(root);
	return out;
}

int sk_st_write_header(FILE *fp, const char *path, const char *json)
{
	size_t hlen = strlen(json), padded = (hlen + 7) / 8 * 8;
	uint8_t len8[8];
	for (int i = 0; i < 8; i++)
		len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
	return sk_fwrite_all(fp, path, len8, 8) || sk_fwrite_all(fp, path, json, hlen) ||
	       sk_fwrite_all(fp, path, "       ", padded - hlen) ? -1 : 0;
}

int sk_st_write(const char *path, const sk_st_entry *entries, size_t n)
{
	sk_st_wentry *w = calloc(n ? n : 1, sizeof *w);
	char *hdr = NULL;
	int rc = -1;
	if (!w)
		return sk_fail(_("%s: out of memory"), path);
	for (size_t i = 0; i < n; i++)
		if (sk_st_check_entry(path, &entries[i], &w[i]) < 0)
			goto out;
	qsort(w, n, sizeof *w, sk_st_wname);
	for (size_t i = 1; i < n; i++)
		if (strcmp(w[i - 1].e->name, w[i].e->name) == 0) {
			sk_fail(_("%s: tensor '%s' is given twice"), path, w[i].e->name);
			goto out;
		}
	qsort(w, n, sizeof *w, sk_st_worder);
	if (!(hdr = sk_st_header(path, w, n)))
		goto out;

	sk_atomic_file af;
	if (sk_atomic_open(&af, path) < 0)
		goto out;
	int bad = sk_st_write_header(af.fp, path, hdr);
	for (size_t i = 0; !bad && i < n; i++)
		bad = sk_fwrite_all(af.fp, path, w[i].e->data, w[i].nbytes);
	if (bad) {
		sk_atomic_abort(&af);
		goto out;
	}
	rc = sk_atomic_commit(&af);
out:
	free(hdr);
	free(w);
	return rc;
}
