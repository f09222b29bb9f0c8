/* Reading one safetensors file: the layout of formats.md §4.1 and every
 * check of §4.3. Tensor views point straight into the mapping (zero copy). */
#include "engine/format/safetensors.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/i18n.h"
#include "engine/format/safetensors_dtypes.h"

#define SK_ST_MAX_HEADER 100000000u  /* the reference limit */
#define SK_ST_MAX_TENSORS 1000000u   /* bounds memory on hostile headers */

struct sk_st_file {
	char *path;
	sk_mapping map;
	int mapped;
	size_t n;
	sk_tensor_view *t;         /* in data order */
	const sk_tensor_view **by_name;
	size_t nmeta;
	char **meta;               /* key, value, key, value, ... */
};

/* Per-tensor offsets kept while validating. */
typedef struct {
	uint64_t begin, end;
	size_t idx;
} sk_st_span;

static uint64_t sk_st_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* "[2, 3]" into buf (truncated if long). */
static const char *sk_st_shape_str(const sk_tensor_view *t, char *buf, size_t len)
{
	size_t o = 0;
	o += (size_t)snprintf(buf, len, "[");
	for (int i = 0; i < t->ndim && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%" PRId64, i ? ", " : "", t->shape[i]);
	if (o < len)
		snprintf(buf + o, len - o, "]");
	return buf;
}

/* A JSON value that must be an integer in [0, INT64_MAX]. */
static int sk_st_get_uint(const json_t *v, uint64_t *out)
{
	if (!json_is_integer(v))
		return -1;
	json_int_t x = json_integer_value(v);
	if (x < 0)
		return -1;
	*out = (uint64_t)x;
	return 0;
}

static int sk_st_parse_metadata(sk_st_file *f, const json_t *meta)
{
	if (!json_is_object(meta))
		return sk_fail(_("%s: __metadata__ is not an object"), f->path);
	size_t n = json_object_size(meta);
	f->meta = calloc(2 * n + 1, sizeof *f->meta);
	if (!f->meta)
		return sk_fail(_("%s: out of memory"), f->path);
	const char *key;
	const json_t *val;
	json_object_foreach((json_t *)meta, key, val) {
		if (!json_is_string(val))
			return sk_fail(_("%s: __metadata__ value of '%s' is not a string"), f->path, key);
		char *k = strdup(key), *v = strdup(json_string_value(val));
		f->meta[2 * f->nmeta] = k;
		f->meta[2 * f->nmeta + 1] = v;
		f->nmeta++;
		if (!k || !v)
			return sk_fail(_("%s: out of memory"), f->path);
	}
	return 0;
}

/* Validates one header entry and fills t (name already set) and span. */
static int sk_st_parse_entry(sk_st_file *f, const char *name, const json_t *e,
			     sk_tensor_view *t, sk_st_span *span)
{
	const char *p = f->path;
	if (!json_is_object(e))
		return sk_fail(_("%s: tensor '%s': entry is not an object"), p, name);
	static const char *const fields[] = { "dtype", "shape", "data_offsets" };
	for (int i = 0; i < 3; i++)
		if (!json_object_get(e, fields[i]))
			return sk_fail(_("%s: tensor '%s': missing field '%s'"), p, name, fields[i]);
	if (json_object_size(e) != 3) {
		const char *key;
		const json_t *v;
		json_object_foreach((json_t *)e, key, v) {
			if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
				return sk_fail(_("%s: tensor '%s': unexpected field '%s'"), p, name, key);
		}
	}

	const json_t *jd = json_object_get(e, "dtype");
	if (!json_is_string(jd))
		return sk_fail(_("%s: tensor '%s': dtype is not a string"), p, name);
	const sk_st_dtype_info *di = sk_st_dtype_by_name(json_string_value(jd));
	if (!di)
		return sk_fail(_("%s: tensor '%s': unknown dtype '%s'"), p, name, json_string_value(jd));
	if (!di->supported)
		return sk_fail(_("%s: tensor '%s': unsupported dtype %s"), p, name, di->name);
	t->dtype = di->dtype;

	const json_t *js = json_object_get(e, "shape");
	if (!json_is_array(js))
		return sk_fail(_("%s: tensor '%s': shape is not an array"), p, name);
	size_t rank = json_array_size(js);
	if (rank > SK_MAX_DIMS)
		return sk_fail(_("%s: tensor '%s': rank %zu exceeds the limit of %d"), p, name, rank,
			       SK_MAX_DIMS);
	t->ndim = (int)rank;
	uint64_t count = 1;
	int overflow = 0;
	for (size_t i = 0; i < rank; i++) {
		uint64_t d;
		if (sk_st_get_uint(json_array_get(js, i), &d) < 0)
			return sk_fail(_("%s: tensor '%s': shape must hold non-negative integers"), p, name);
		t->shape[i] = (int64_t)d;
		/* Like the reference, any overflow of the running product is an
		 * error, even if a later dimension is 0. */
		if (d != 0 && count > UINT64_MAX / d)
			overflow = 1;
		count *= d;
	}
	char sbuf[256];
	if (overflow || count > (uint64_t)INT64_MAX || (count != 0 && count > UINT64_MAX / (uint64_t)di->bits))
		return sk_fail(_("%s: tensor '%s': shape %s has too many elements"), p, name,
			       sk_st_shape_str(t, sbuf, sizeof sbuf));
	uint64_t bits = count * (uint64_t)di->bits;
	if (bits % 8)
		return sk_fail(_("%s: tensor '%s': shape %s of %s is not a whole number of bytes"), p,
			       name, sk_st_shape_str(t, sbuf, sizeof sbuf), di->name);
	uint64_t nbytes = bits / 8;

	const json_t *jo = json_object_get(e, "data_offsets");
	uint64_t b, en;
	if (!json_is_array(jo) || json_array_size(jo) != 2 ||
	    sk_st_get_uint(json_array_get(jo, 0), &b) < 0 || sk_st_get_uint(json_array_get(jo, 1), &en) < 0)
		return sk_fail(_("%s: tensor '%s': data_offsets must be two non-negative integers"), p, name);
	if (en < b)
		return sk_fail(_("%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] end before they begin"),
			       p, name, b, en);
	if (en - b != nbytes)
		return sk_fail(_("%s: tensor '%s': shape %s of %s needs %" PRIu64
				 " bytes but data_offsets span %" PRIu64),
			       p, name, sk_st_shape_str(t, sbuf, sizeof sbuf), di->name, nbytes, en - b);
	t->nbytes = nbytes;
	span->begin = b;
	span->end = en;
	return 0;
}

static int sk_st_span_cmp(const void *a, const void *b)
{
	const sk_st_span *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int sk_st_view_name_cmp(const void *a, const void *b)
{
	const sk_tensor_view *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

/* Parses the header's tensors into f->t (in data order) and checks the
 * layout of the data buffer (§4.3 items 5–9). */
static int sk_st_parse_tensors(sk_st_file *f, const json_t *root, const uint8_t *data, uint64_t data_len)
{
	const json_t *meta = json_object_get(root, "__metadata__");
	if (meta && sk_st_parse_metadata(f, meta) < 0)
		return -1;
	size_t n = json_object_size(root) - (meta ? 1 : 0);
	if (n > SK_ST_MAX_TENSORS)
		return sk_fail(_("%s: %zu tensors exceed the limit of %u"), f->path, n, SK_ST_MAX_TENSORS);

	sk_tensor_view *tmp = calloc(n ? n : 1, sizeof *tmp);
	sk_st_span *spans = calloc(n ? n : 1, sizeof *spans);
	int rc = -1;
	if (!tmp || !spans) {
		sk_fail(_("%s: out of memory"), f->path);
		goto out;
	}
	size_t k = 0;
	const char *key;
	const json_t *val;
	json_object_foreach((json_t *)root, key, val) {
		if (val == meta)
			continue;
		if (!*key) {
			sk_fail(_("%s: a tensor has an empty name"), f->path);
			goto out;
		}
		sk_tensor_view *t = &tmp[k];
		if (!(t->name = strdup(key))) {
			sk_fail(_("%s: out of memory"), f->path);
			goto out;
		}
		t->file = f->path;
		spans[k].idx = k;
		k++;
		if (sk_st_parse_entry(f, key, val, t, &spans[k - 1]) < 0)
			goto out;
	}

	/* Contiguous from 0, no gaps or overlaps, nothing after the last one. */
	qsort(spans, n, sizeof *spans, sk_st_span_cmp);
	uint64_t pos = 0;
	for (size_t i = 0; i < n; i++) {
		const sk_st_span *s = &spans[i];
		const char *name = tmp[s->idx].name;
		if (s->begin != pos) {
			if (i == 0)
				sk_fail(_("%s: tensor '%s': data starts at offset %" PRIu64 ", not 0"),
					f->path, name, s->begin);
			else
				sk_fail(_("%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
					  "] %s tensor '%s', which ends at %" PRIu64),
					f->path, name, s->begin, s->end,
					s->begin > pos ? _("leave a gap after") : _("overlap"),
					tmp[spans[i - 1].idx].name, pos);
			goto out;
		}
		pos = s->end;
	}
	if (pos != data_len) {
		if (pos > data_len)
			sk_fail(_("%s: tensors need %" PRIu64 " bytes of data but the file holds %" PRIu64
				  " (truncated?)"), f->path, pos, data_len);
		else
			sk_fail(_("%s: %" PRIu64 " bytes after the end of the tensor data"), f->path,
				data_len - pos);
		goto out;
	}

	f->t = calloc(n ? n : 1, sizeof *f->t);
	f->by_name = calloc(n ? n : 1, sizeof *f->by_name);
	if (!f->t || !f->by_name) {
		sk_fail(_("%s: out of memory"), f->path);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		f->t[i] = tmp[spans[i].idx];
		tmp[spans[i].idx].name = NULL;  /* moved */
		f->t[i].data = data + spans[i].begin;
		f->by_name[i] = &f->t[i];
	}
	f->n = n;
	qsort(f->by_name, n, sizeof *f->by_name, sk_st_view_name_cmp);
	rc = 0;
out:
	if (tmp)
		for (size_t i = 0; i < n; i++)
			free((char *)tmp[i].name);
	free(tmp);
	free(spans);
	return rc;
}

static int sk_st_parse(sk_st_file *f, const uint8_t *buf, size_t len)
{
	if (len < 8)
		return sk_fail(_("%s: file is too short to be safetensors (%zu bytes)"), f->path, len);
	uint64_t hlen = sk_st_le64(buf);
	if (hlen > SK_ST_MAX_HEADER)
		return sk_fail(_("%s: header length %" PRIu64 " exceeds the limit of %u bytes"), f->path,
			       hlen, SK_ST_MAX_HEADER);
	if (hlen > len - 8)
		return sk_fail(_("%s: header length %" PRIu64 " runs past the end of the file (%zu bytes)"),
			       f->path, hlen, len);
	const char *h = (const char *)buf + 8;
	if (hlen == 0 || h[0] != '{')
		return sk_fail(_("%s: header does not start with '{'"), f->path);

	json_error_t err;
	json_t *root = json_loadb(h, (size_t)hlen, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &err);
	if (!root)
		return sk_fail(_("%s: header is not valid JSON: %s (at byte %d)"), f->path, err.text,
			       err.position);
	int rc = -1;
	if (!json_is_object(root)) {
		sk_fail(_("%s: header is not a JSON object"), f->path);
		goto out;
	}
	/* Only the reference writer's padding may follow the object. */
	for (size_t i = (size_t)err.position; i < hlen; i++) {
		if (h[i] != ' ') {
			sk_fail(_("%s: header has bytes other than spaces after the JSON object (at byte %zu)"),
				f->path, i);
			goto out;
		}
	}
	rc = sk_st_parse_tensors(f, root, buf + 8 + hlen, (uint64_t)(len - 8 - hlen));
out:
	json_decref(root);
	return rc;
}

static sk_st_file *sk_st_new(const char *name)
{
	sk_st_file *f = calloc(1, sizeof *f);
	if (!f || !(f->path = strdup(name))) {
		free(f);
		sk_fail(_("%s: out of memory"), name);
		return NULL;
	}
	return f;
}

sk_st_file *sk_st_open_mem(const void *buf, size_t len, const char *name)
{
	sk_st_file *f = sk_st_new(name ? name : "<memory>");
	if (!f)
		return NULL;
	if (sk_st_parse(f, buf, len) < 0) {
		sk_st_close(f);
		return NULL;
	}
	return f;
}

sk_st_file *sk_st_open(const char *path)
{
	sk_st_file *f = sk_st_new(path);
	if (!f)
		return NULL;
	if (sk_map_file(path, &f->map) < 0) {
		sk_st_close(f);
		return NULL;
	}
	f->mapped = 1;
	if (sk_st_parse(f, f->map.data, f->map.len) < 0) {
		sk_st_close(f);
		return NULL;
	}
	return f;
}

void sk_st_close(sk_st_file *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		free((char *)f->t[i].name);
	free(f->t);
	free(f->by_name);
	for (size_t i = 0; i < 2 * f->nmeta; i++)
		free(f->meta[i]);
	free(f->meta);
	if (f->mapped)
		sk_unmap_file(&f->map);
	free(f->path);
	free(f);
}

size_t sk_st_count(const sk_st_file *f) { return f->n; }

const sk_tensor_view *sk_st_tensor(const sk_st_file *f, size_t i)
{
	return i < f->n ? &f->t[i] : NULL;
}

const sk_tensor_view *sk_st_find(const sk_st_file *f, const char *name)
{
	size_t lo = 0, hi = f->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(f->by_name[mid]->name, name);
		if (c == 0)
			return f->by_name[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *sk_st_metadata(const sk_st_file *f, const char *key)
{
	for (size_t i = 0; i < f->nmeta; i++)
		if (f->meta[2 * i] && strcmp(f->meta[2 * i], key) == 0)
			return f->meta[2 * i + 1];
	return NULL;
}

size_t sk_st_metadata_count(const sk_st_file *f) { return f->nmeta; }

const char *sk_st_metadata_key(const sk_st_file *f, size_t i)
{
	return i < f->nmeta ? f->meta[2 * i] : NULL;
}
