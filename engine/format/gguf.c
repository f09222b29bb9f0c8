/* GGUF v2/v3 reader (formats.md §5). Everything is parsed and validated at
 * open, so the accessors never meet a bad offset: every count and length is
 * checked against the bytes that remain before anything is allocated, and
 * allocations stay proportional to the file size. Values stay in the mapping
 * (zero-copy) except keys, tensor names and scalar strings, which are copied
 * to get a terminating NUL. */
#include "engine/format/gguf.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/i18n.h"

#define GGUF_MAGIC 0x46554747u          /* "GGUF" read as a little-endian u32 */
#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_KEY_LEN 65535u         /* spec limit on key length */
#define GGUF_MAX_STR_LEN (1ull << 30)   /* ggml's 1 GiB limit on one string */
#define GGUF_MAX_NAME_LEN 64u           /* spec: 64; ggml's buffer keeps 63 + NUL */
#define GGUF_MAX_DIMS 4u
/* Smallest possible records, used to cap counts by the bytes left:
 * kv = key length (8) + 1-byte key + type (4) + 1-byte value;
 * tensor info = name length (8) + n_dims (4) + type (4) + offset (8). */
#define GGUF_MIN_KV_BYTES 14u
#define GGUF_MIN_TI_BYTES 24u

struct sk_gguf {
	sk_mapping map;          /* when opened from a path */
	int mapped;
	const uint8_t *base;
	size_t len;
	char *name;              /* path or caller's name: messages and view->file */
	uint32_t version;
	uint32_t alignment;
	uint64_t data_start;

	size_t n_kv;
	sk_gguf_kv *kvs;
	uint64_t **str_offs;     /* per kv: file offset of each string of a string array */
	size_t n_tensors;
	sk_tensor_view *tensors;
	uint32_t *ggml_types;

	/* open-addressing hash tables of index + 1 (0 = empty); size a power of two */
	size_t *kv_hash, kv_hcap;
	size_t *t_hash, t_hcap;
};

/* ---- ggml types ---- */

typedef struct {
	const char *name;
	int32_t blck;      /* elements per block; 0 = unknown or retired id */
	int32_t size;      /* bytes per block */
	sk_dtype dt;       /* SK_DT_COUNT when sk_dtype has no name for it */
} ggml_type_info;

static const ggml_type_info ggml_types[] = {
	[0] = { "F32", 1, 4, SK_DT_F32 },
	[1] = { "F16", 1, 2, SK_DT_F16 },
	[2] = { "Q4_0", 32, 18, SK_DT_Q4_0 },
	[3] = { "Q4_1", 32, 20, SK_DT_Q4_1 },
	[6] = { "Q5_0", 32, 22, SK_DT_Q5_0 },
	[7] = { "Q5_1", 32, 24, SK_DT_Q5_1 },
	[8] = { "Q8_0", 32, 34, SK_DT_Q8_0 },
	[9] = { "Q8_1", 32, 36, SK_DT_Q8_1 },
	[10] = { "Q2_K", 256, 84, SK_DT_Q2_K },
	[11] = { "Q3_K", 256, 110, SK_DT_Q3_K },
	[12] = { "Q4_K", 256, 144, SK_DT_Q4_K },
	[13] = { "Q5_K", 256, 176, SK_DT_Q5_K },
	[14] = { "Q6_K", 256, 210, SK_DT_Q6_K },
	[15] = { "Q8_K", 256, 292, SK_DT_Q8_K },
	[16] = { "IQ2_XXS", 256, 66, SK_DT_COUNT },
	[17] = { "IQ2_XS", 256, 74, SK_DT_COUNT },
	[18] = { "IQ3_XXS", 256, 98, SK_DT_COUNT },
	[19] = { "IQ1_S", 256, 50, SK_DT_COUNT },
	[20] = { "IQ4_NL", 32, 18, SK_DT_COUNT },
	[21] = { "IQ3_S", 256, 110, SK_DT_COUNT },
	[22] = { "IQ2_S", 256, 82, SK_DT_COUNT },
	[23] = { "IQ4_XS", 256, 136, SK_DT_COUNT },
	[24] = { "I8", 1, 1, SK_DT_I8 },
	[25] = { "I16", 1, 2, SK_DT_I16 },
	[26] = { "I32", 1, 4, SK_DT_I32 },
	[27] = { "I64", 1, 8, SK_DT_I64 },
	[28] = { "F64", 1, 8, SK_DT_F64 },
	[29] = { "IQ1_M", 256, 56, SK_DT_COUNT },
	[30] = { "BF16", 1, 2, SK_DT_BF16 },
	[34] = { "TQ1_0", 256, 54, SK_DT_COUNT },
	[35] = { "TQ2_0", 256, 66, SK_DT_COUNT },
	[39] = { "MXFP4", 32, 17, SK_DT_COUNT },
	[40] = { "NVFP4", 64, 36, SK_DT_COUNT },
	[41] = { "Q1_0", 128, 18, SK_DT_COUNT },
};
#define N_GGML_TYPES (sizeof ggml_types / sizeof ggml_types[0])

static const ggml_type_info *type_info(uint32_t t)
{
	if (t >= N_GGML_TYPES || ggml_types[t].blck == 0)
		return NULL;
	return &ggml_types[t];
}

const char *sk_ggml_type_name(uint32_t type)
{
	const ggml_type_info *ti = type_info(type);
	return ti ? ti->name : NULL;
}

int sk_ggml_type_block(uint32_t type, int64_t *block_elems, int64_t *block_bytes)
{
	const ggml_type_info *ti = type_info(type);
	if (!ti)
		return -1;
	*block_elems = ti->blck;
	*block_bytes = ti->size;
	return 0;
}

sk_dtype sk_ggml_type_dtype(uint32_t type)
{
	const ggml_type_info *ti = type_info(type);
	return ti ? ti->dt : SK_DT_COUNT;
}

int64_t sk_ggml_type_nbytes(uint32_t type, int64_t nelems)
{
	const ggml_type_info *ti = type_info(type);
	if (!ti || nelems < 0 || nelems % ti->blck)
		return -1;
	int64_t nb = nelems / ti->blck;
	if (nb > INT64_MAX / ti->size)
		return -1;
	return nb * ti->size;
}

/* ---- byte reader ---- */

typedef struct {
	const uint8_t *p;
	size_t len, pos;
	const char *name;
} reader;

static size_t left(const reader *r) { return r->len - r->pos; }

static int need(reader *r, uint64_t n, const char *what)
{
	if (n > left(r))
		return sk_fail(_("%s: truncated file (%s at offset %zu)"), r->name, what, r->pos);
	return 0;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32); }

static int rd_u32(reader *r, uint32_t *v, const char *what)
{
	if (need(r, 4, what))
		return -1;
	*v = le32(r->p + r->pos);
	r->pos += 4;
	return 0;
}

static int rd_u64(reader *r, uint64_t *v, const char *what)
{
	if (need(r, 8, what))
		return -1;
	*v = le64(r->p + r->pos);
	r->pos += 8;
	return 0;
}

/* A GGUF string: u64 length + bytes. Leaves *s at the bytes in the file. */
static int rd_str(reader *r, const uint8_t **s, uint64_t *n, uint64_t max, const char *what)
{
	if (rd_u64(r, n, what))
		return -1;
	if (*n > max)
		return sk_fail(_("%s: %s is too long (%llu bytes at offset %zu)"), r->name, what,
			       (unsigned long long)*n, r->pos - 8);
	if (need(r, *n, what))
		return -1;
	*s = r->p + r->pos;
	r->pos += (size_t)*n;
	return 0;
}

static char *dup_bytes(const uint8_t *s, size_t n)
{
	char *d = malloc(n + 1);
	if (!d) {
		sk_fail(_("out of memory"));
		return NULL;
	}
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* Byte size of a scalar value type; 0 for STRING/ARRAY; -1 for unknown ids. */
static int scalar_size(uint32_t t)
{
	switch (t) {
	case SK_GGUF_UINT8: case SK_GGUF_INT8: case SK_GGUF_BOOL: return 1;
	case SK_GGUF_UINT16: case SK_GGUF_INT16: return 2;
	case SK_GGUF_UINT32: case SK_GGUF_INT32: case SK_GGUF_FLOAT32: return 4;
	case SK_GGUF_UINT64: case SK_GGUF_INT64: case SK_GGUF_FLOAT64: return 8;
	case SK_GGUF_STRING: case SK_GGUF_ARRAY: return 0;
	default: return -1;
	}
}

/* ---- hashing (FNV-1a) for unique-name checks and lookups ---- */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static size_t hash_cap(size_t n)
{
	size_t c = 16;
	while (c < 2 * n)
		c *= 2;
	return c;
}

/* Finds name in table; returns its index or (size_t)-1. */
static size_t hash_find(const size_t *tab, size_t cap, const char *name,
			const char *(*name_of)(const sk_gguf *, size_t), const sk_gguf *g)
{
	if (!tab)
		return (size_t)-1;
	for (size_t i = hash_str(name) & (cap - 1);; i = (i + 1) & (cap - 1)) {
		if (tab[i] == 0)
			return (size_t)-1;
		if (strcmp(name_of(g, tab[i] - 1), name) == 0)
			return tab[i] - 1;
	}
}

/* Inserts idx; returns -1 when the name is already there. */
static int hash_insert(size_t *tab, size_t cap, size_t idx,
		       const char *(*name_of)(const sk_gguf *, size_t), const sk_gguf *g)
{
	const char *name = name_of(g, idx);
	for (size_t i = hash_str(name) & (cap - 1);; i = (i + 1) & (cap - 1)) {
		if (tab[i] == 0) {
			tab[i] = idx + 1;
			return 0;
		}
		if (strcmp(name_of(g, tab[i] - 1), name) == 0)
			return -1;
	}
}

static const char *kv_name(const sk_gguf *g, size_t i) { return g->kvs[i].key; }
static const char *tensor_name(const sk_gguf *g, size_t i) { return g->tensors[i].name; }

/* ---- parsing ---- */

static int parse_value(sk_gguf *g, reader *r, size_t idx)
{
	sk_gguf_kv *kv = &g->kvs[idx];
	int sz = scalar_size(kv->type);
	if (sz < 0)
		return sk_fail(_("%s: key %s has unknown value type %u"), r->name, kv->key, (unsigned)kv->type);
	if (sz > 0) {
		if (need(r, (uint64_t)sz, kv->key))
			return -1;
		kv->data = r->p + r->pos;
		if (kv->type == SK_GGUF_BOOL && r->p[r->pos] > 1)
			return sk_fail(_("%s: key %s has invalid bool value %u"), r->name, kv->key, r->p[r->pos]);
		r->pos += (size_t)sz;
		return 0;
	}
	if (kv->type == SK_GGUF_STRING) {
		const uint8_t *s;
		uint64_t n;
		if (rd_str(r, &s, &n, GGUF_MAX_STR_LEN, kv->key))
			return -1;
		kv->data = s - 8;
		kv->str_len = n;
		return (kv->str = dup_bytes(s, (size_t)n)) ? 0 : -1;
	}

	/* array */
	uint32_t at;
	uint64_t count;
	if (rd_u32(r, &at, kv->key) || rd_u64(r, &count, kv->key))
		return -1;
	kv->arr_type = (sk_gguf_type)at;
	kv->arr_count = count;
	int esz = scalar_size(at);
	if (esz < 0)
		return sk_fail(_("%s: array %s has unknown element type %u"), r->name, kv->key, (unsigned)at);
	if (at == SK_GGUF_ARRAY)
		return sk_fail(_("%s: array %s is nested (arrays of arrays are not supported)"), r->name, kv->key);
	kv->data = r->p + r->pos;
	if (at != SK_GGUF_STRING) {
		if (count > left(r) / (uint64_t)esz)
			return sk_fail(_("%s: array %s has %llu elements, more than the file holds"), r->name,
				       kv->key, (unsigned long long)count);
		if (at == SK_GGUF_BOOL) {
			for (uint64_t i = 0; i < count; i++)
				if (r->p[r->pos + i] > 1)
					return sk_fail(_("%s: array %s has invalid bool value %u at %llu"), r->name,
						       kv->key, r->p[r->pos + i], (unsigned long long)i);
		}
		r->pos += (size_t)(count * (uint64_t)esz);
		return 0;
	}
	/* Strings: each is at least its 8-byte length, which bounds the table. */
	if (count > left(r) / 8)
		return sk_fail(_("%s: array %s has %llu strings, more than the file holds"), r->name,
			       kv->key, (unsigned long long)count);
	uint64_t *offs = malloc((size_t)(count ? count : 1) * sizeof *offs);
	if (!offs)
		return sk_fail(_("out of memory"));
	g->str_offs[idx] = offs;
	for (uint64_t i = 0; i < count; i++) {
		const uint8_t *s;
		uint64_t n;
		offs[i] = r->pos;
		if (rd_str(r, &s, &n, GGUF_MAX_STR_LEN, kv->key))
			return -1;
	}
	return 0;
}

static int parse_kvs(sk_gguf *g, reader *r)
{
	for (size_t i = 0; i < g->n_kv; i++) {
		sk_gguf_kv *kv = &g->kvs[i];
		const uint8_t *k;
		uint64_t n;
		uint32_t t;
		if (rd_str(r, &k, &n, GGUF_MAX_KEY_LEN, _("metadata key")))
			return -1;
		if (n == 0)
			return sk_fail(_("%s: empty metadata key (record %zu)"), r->name, i);
		if (memchr(k, 0, (size_t)n))
			return sk_fail(_("%s: metadata key %zu contains a NUL byte"), r->name, i);
		if (!(kv->key = dup_bytes(k, (size_t)n)))
			return -1;
		if (hash_insert(g->kv_hash, g->kv_hcap, i, kv_name, g))
			return sk_fail(_("%s: duplicate metadata key %s"), r->name, kv->key);
		if (rd_u32(r, &t, kv->key))
			return -1;
		kv->type = (sk_gguf_type)t;
		if (parse_value(g, r, i))
			return -1;
	}
	return 0;
}

static int check_alignment(sk_gguf *g)
{
	g->alignment = GGUF_DEFAULT_ALIGNMENT;
	const sk_gguf_kv *kv = sk_gguf_find(g, "general.alignment");
	if (!kv)
		return 0;
	if (kv->type != SK_GGUF_UINT32)
		return sk_fail(_("%s: general.alignment must be of type uint32"), g->name);
	uint32_t a = le32(kv->data);
	if (a == 0 || (a & (a - 1)) != 0)
		return sk_fail(_("%s: general.alignment %u is not a power of two"), g->name, (unsigned)a);
	g->alignment = a;
	return 0;
}

static int parse_tensor_infos(sk_gguf *g, reader *r, uint64_t *offsets)
{
	for (size_t i = 0; i < g->n_tensors; i++) {
		sk_tensor_view *t = &g->tensors[i];
		const uint8_t *s;
		uint64_t n;
		uint32_t nd, type;
		if (rd_str(r, &s, &n, GGUF_MAX_NAME_LEN, _("tensor name")))
			return -1;
		if (memchr(s, 0, (size_t)n))
			return sk_fail(_("%s: tensor name %zu contains a NUL byte"), r->name, i);
		if (!(t->name = dup_bytes(s, (size_t)n)))
			return -1;
		t->file = g->name;
		if (hash_insert(g->t_hash, g->t_hcap, i, tensor_name, g))
			return sk_fail(_("%s: duplicate tensor name %s"), r->name, t->name);
		if (rd_u32(r, &nd, t->name))
			return -1;
		if (nd > GGUF_MAX_DIMS)
			return sk_fail(_("%s: tensor %s has %u dimensions (at most %u)"), r->name, t->name,
				       (unsigned)nd, GGUF_MAX_DIMS);
		uint64_t ne[GGUF_MAX_DIMS];
		int64_t nel = 1;
		int zero = 0;
		for (uint32_t d = 0; d < nd; d++) {
			if (rd_u64(r, &ne[d], t->name))
				return -1;
			if (ne[d] > (uint64_t)INT64_MAX)
				return sk_fail(_("%s: tensor %s has a negative dimension"), r->name, t->name);
			if (ne[d] == 0) {
				zero = 1;  /* the product is 0 whatever the other dimensions are */
			} else if (!zero) {
				if ((int64_t)ne[d] > INT64_MAX / nel)
					return sk_fail(_("%s: tensor %s has too many elements"), r->name, t->name);
				nel *= (int64_t)ne[d];
			}
		}
		if (zero)
			nel = 0;
		if (rd_u32(r, &type, t->name) || rd_u64(r, &offsets[i], t->name))
			return -1;
		const ggml_type_info *ti = type_info(type);
		if (!ti)
			return sk_fail(_("%s: tensor %s has unknown type %u"), r->name, t->name, (unsigned)type);
		if (nd > 0 && ne[0] % (uint64_t)ti->blck)
			return sk_fail(_("%s: tensor %s: row length %llu is not a multiple of the %s block size %d"),
				       r->name, t->name, (unsigned long long)ne[0], ti->name, (int)ti->blck);
		if (nd == 0 && ti->blck != 1)
			return sk_fail(_("%s: tensor %s: a scalar cannot be of block type %s"), r->name, t->name,
				       ti->name);
		int64_t nbytes = sk_ggml_type_nbytes(type, nel);
		if (nbytes < 0)
			return sk_fail(_("%s: tensor %s is too large"), r->name, t->name);
		g->ggml_types[i] = type;
		t->dtype = ti->dt;
		t->ndim = (int)nd;
		for (uint32_t d = 0; d < nd; d++)
			t->shape[d] = (int64_t)ne[nd - 1 - d];  /* PyTorch order */
		t->nbytes = (uint64_t)nbytes;
	}
	return 0;
}

static int place_tensors(sk_gguf *g, reader *r, const uint64_t *offsets)
{
	uint64_t a = g->alignment;
	uint64_t pos = r->pos;
	uint64_t pad = (a - pos % a) % a;
	g->data_start = pos + pad;  /* cannot overflow: pos <= len and pad < 2^32 */
	if (g->n_tensors == 0)
		return 0;
	if (g->data_start > g->len)
		return sk_fail(_("%s: truncated file (no tensor data section)"), g->name);
	uint64_t avail = g->len - g->data_start;
	for (size_t i = 0; i < g->n_tensors; i++) {
		sk_tensor_view *t = &g->tensors[i];
		uint64_t off = offsets[i];
		if (off % a)
			return sk_fail(_("%s: tensor %s: offset %llu is not a multiple of the alignment %u"),
				       g->name, t->name, (unsigned long long)off, (unsigned)a);
		if (off > avail || t->nbytes > avail - off)
			return sk_fail(_("%s: tensor %s: data (offset %llu, %llu bytes) lies past the end of the file"),
				       g->name, t->name, (unsigned long long)off, (unsigned long long)t->nbytes);
		t->data = g->base + g->data_start + off;
	}
	return 0;
}

static int parse(sk_gguf *g)
{
	reader r = { g->base, g->len, 0, g->name };
	uint64_t n_tensors, n_kv;
	if (g->len < 4 || le32(g->base) != GGUF_MAGIC)
		return sk_fail(_("%s: not a GGUF file (bad magic)"), g->name);
	r.pos = 4;
	if (rd_u32(&r, &g->version, _("version")))
		return -1;
	if ((g->version & 0xffffu) == 0 && g->version != 0)
		return sk_fail(_("%s: GGUF version field is byte-swapped (big-endian file); not supported"), g->name);
	if (g->version == 1)
		return sk_fail(_("%s: GGUF version 1 is not supported (convert the file to version 3)"), g->name);
	if (g->version < 2 || g->version > 3)
		return sk_fail(_("%s: unsupported GGUF version %u"), g->name, (unsigned)g->version);
	if (rd_u64(&r, &n_tensors, _("tensor count")) || rd_u64(&r, &n_kv, _("metadata count")))
		return -1;
	if (n_kv > left(&r) / GGUF_MIN_KV_BYTES ||
	    n_tensors > (left(&r) - n_kv * GGUF_MIN_KV_BYTES) / GGUF_MIN_TI_BYTES)
		return sk_fail(_("%s: counts of %llu tensors and %llu metadata entries do not fit in the file"),
			       g->name, (unsigned long long)n_tensors, (unsigned long long)n_kv);
	g->n_kv = (size_t)n_kv;
	g->n_tensors = (size_t)n_tensors;

	g->kvs = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kvs);
	g->str_offs = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->str_offs);
	g->kv_hcap = hash_cap(g->n_kv);
	g->kv_hash = calloc(g->kv_hcap, sizeof *g->kv_hash);
	g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
	g->ggml_types = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->ggml_types);
	g->t_hcap = hash_cap(g->n_tensors);
	g->t_hash = calloc(g->t_hcap, sizeof *g->t_hash);
	uint64_t *offsets = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *offsets);
	if (!g->kvs || !g->str_offs || !g->kv_hash || !g->tensors || !g->ggml_types || !g->t_hash || !offsets) {
		free(offsets);
		return sk_fail(_("out of memory"));
	}
	int rc = -1;
	if (!parse_kvs(g, &r) && !check_alignment(g) && !parse_tensor_infos(g, &r, offsets) &&
	    !place_tensors(g, &r, offsets))
		rc = 0;
	free(offsets);
	return rc;
}

static sk_gguf *open_common(sk_gguf *g, const char *name)
{
	if (!(g->name = dup_bytes((const uint8_t *)name, strlen(name))) || parse(g)) {
		sk_gguf_close(g);
		return NULL;
	}
	return g;
}

sk_gguf *sk_gguf_open(const char *path)
{
	sk_gguf *g = calloc(1, sizeof *g);
	if (!g) {
		sk_fail(_("out of memory"));
		return NULL;
	}
	if (sk_map_file(path, &g->map)) {
		free(g);
		return NULL;
	}
	g->mapped = 1;
	g->base = g->map.data;
	g->len = g->map.len;
	return open_common(g, path);
}

sk_gguf *sk_gguf_open_mem(const void *buf, size_t len, const char *name)
{
	sk_gguf *g = calloc(1, sizeof *g);
	if (!g) {
		sk_fail(_("out of memory"));
		return NULL;
	}
	g->base = buf;
	g->len = buf ? len : 0;
	return open_common(g, name ? name : "<memory>");
}

void sk_gguf_close(sk_gguf *g)
{
	if (!g)
		return;
	if (g->kvs) {
		for (size_t i = 0; i < g->n_kv; i++) {
			free((char *)g->kvs[i].key);
			free((char *)g->kvs[i].str);
			if (g->str_offs)
				free(g->str_offs[i]);
		}
	}
	if (g->tensors)
		for (size_t i = 0; i < g->n_tensors; i++)
			free((char *)g->tensors[i].name);
	free(g->kvs);
	free(g->str_offs);
	free(g->kv_hash);
	free(g->tensors);
	free(g->ggml_types);
	free(g->t_hash);
	if (g->mapped)
		sk_unmap_file(&g->map);
	free(g->name);
	free(g);
}

/* ---- accessors ---- */

uint32_t sk_gguf_version(const sk_gguf *g) { return g->version; }
uint32_t sk_gguf_alignment(const sk_gguf *g) { return g->alignment; }
uint64_t sk_gguf_data_offset(const sk_gguf *g) { return g->data_start; }
size_t sk_gguf_kv_count(const sk_gguf *g) { return g->n_kv; }

const sk_gguf_kv *sk_gguf_kv_at(const sk_gguf *g, size_t i)
{
	return i < g->n_kv ? &g->kvs[i] : NULL;
}

const sk_gguf_kv *sk_gguf_find(const sk_gguf *g, const char *key)
{
	size_t i = hash_find(g->kv_hash, g->kv_hcap, key, kv_name, g);
	return i == (size_t)-1 ? NULL : &g->kvs[i];
}

static const sk_gguf_kv *find_typed(const sk_gguf *g, const char *key)
{
	const sk_gguf_kv *kv = sk_gguf_find(g, key);
	if (!kv)
		sk_fail(_("%s: metadata key %s is missing"), g->name, key);
	return kv;
}

static int wrong_type(const sk_gguf *g, const char *key, const char *want)
{
	return sk_fail(_("%s: metadata key %s is not of type %s"), g->name, key, want);
}

int sk_gguf_get_u32(const sk_gguf *g, const char *key, uint32_t *out)
{
	const sk_gguf_kv *kv = find_typed(g, key);
	if (!kv)
		return -1;
	const uint8_t *p = kv->data;
	int64_t sv = 0;
	uint64_t uv = 0;
	int is_signed = 1;
	switch (kv->type) {
	case SK_GGUF_UINT8: uv = p[0]; is_signed = 0; break;
	case SK_GGUF_INT8: sv = (int8_t)p[0]; break;
	case SK_GGUF_UINT16: uv = (uint16_t)(p[0] | (p[1] << 8)); is_signed = 0; break;
	case SK_GGUF_INT16: sv = (int16_t)(uint16_t)(p[0] | (p[1] << 8)); break;
	case SK_GGUF_UINT32: uv = le32(p); is_signed = 0; break;
	case SK_GGUF_INT32: sv = (int32_t)le32(p); break;
	case SK_GGUF_UINT64: uv = le64(p); is_signed = 0; break;
	case SK_GGUF_INT64: sv = (int64_t)le64(p); break;
	default: return wrong_type(g, key, "integer");
	}
	if (is_signed) {
		if (sv < 0)
			return sk_fail(_("%s: metadata key %s is negative (%lld)"), g->name, key, (long long)sv);
		uv = (uint64_t)sv;
	}
	if (uv > UINT32_MAX)
		return sk_fail(_("%s: metadata key %s is too large (%llu)"), g->name, key, (unsigned long long)uv);
	*out = (uint32_t)uv;
	return 0;
}

int sk_gguf_get_f32(const sk_gguf *g, const char *key, float *out)
{
	const sk_gguf_kv *kv = find_typed(g, key);
	if (!kv)
		return -1;
	if (kv->type == SK_GGUF_FLOAT32) {
		uint32_t u = le32(kv->data);
		memcpy(out, &u, 4);
		return 0;
	}
	if (kv->type == SK_GGUF_FLOAT64) {
		uint64_t u = le64(kv->data);
		double d;
		memcpy(&d, &u, 8);
		*out = (float)d;
		return 0;
	}
	return wrong_type(g, key, "float32");
}

int sk_gguf_get_bool(const sk_gguf *g, const char *key, int *out)
{
	const sk_gguf_kv *kv = find_typed(g, key);
	if (!kv)
		return -1;
	if (kv->type != SK_GGUF_BOOL)
		return wrong_type(g, key, "bool");
	*out = *(const uint8_t *)kv->data;
	return 0;
}

int sk_gguf_get_str(const sk_gguf *g, const char *key, const char **s, size_t *len)
{
	const sk_gguf_kv *kv = find_typed(g, key);
	if (!kv)
		return -1;
	if (kv->type != SK_GGUF_STRING)
		return wrong_type(g, key, "string");
	*s = kv->str;
	if (len)
		*len = (size_t)kv->str_len;
	return 0;
}

int sk_gguf_arr_f64(const sk_gguf_kv *kv, uint64_t i, double *out)
{
	if (kv->type != SK_GGUF_ARRAY)
		return sk_fail(_("metadata key %s is not an array"), kv->key);
	if (i >= kv->arr_count)
		return sk_fail(_("metadata array %s: index %llu out of range (%llu elements)"), kv->key,
			       (unsigned long long)i, (unsigned long long)kv->arr_count);
	int sz = scalar_size(kv->arr_type);
	if (sz <= 0)
		return sk_fail(_("metadata array %s is not numeric"), kv->key);
	const uint8_t *p = (const uint8_t *)kv->data + i * (uint64_t)sz;
	uint32_t u32;
	uint64_t u64;
	float f;
	switch (kv->arr_type) {
	case SK_GGUF_UINT8: case SK_GGUF_BOOL: *out = p[0]; break;
	case SK_GGUF_INT8: *out = (int8_t)p[0]; break;
	case SK_GGUF_UINT16: *out = (uint16_t)(p[0] | (p[1] << 8)); break;
	case SK_GGUF_INT16: *out = (int16_t)(uint16_t)(p[0] | (p[1] << 8)); break;
	case SK_GGUF_UINT32: *out = le32(p); break;
	case SK_GGUF_INT32: *out = (int32_t)le32(p); break;
	case SK_GGUF_FLOAT32: u32 = le32(p); memcpy(&f, &u32, 4); *out = f; break;
	case SK_GGUF_UINT64: *out = (double)le64(p); break;
	case SK_GGUF_INT64: *out = (double)(int64_t)le64(p); break;
	case SK_GGUF_FLOAT64: u64 = le64(p); memcpy(out, &u64, 8); break;
	default: return sk_fail(_("metadata array %s is not numeric"), kv->key);
	}
	return 0;
}

int sk_gguf_arr_str(const sk_gguf *g, const sk_gguf_kv *kv, uint64_t i, const char **s, size_t *len)
{
	if (kv < g->kvs || kv >= g->kvs + g->n_kv)
		return sk_fail(_("%s: metadata entry does not belong to this file"), g->name);
	if (kv->type != SK_GGUF_ARRAY || kv->arr_type != SK_GGUF_STRING)
		return sk_fail(_("%s: metadata key %s is not an array of strings"), g->name, kv->key);
	if (i >= kv->arr_count)
		return sk_fail(_("%s: metadata array %s: index %llu out of range (%llu elements)"), g->name,
			       kv->key, (unsigned long long)i, (unsigned long long)kv->arr_count);
	uint64_t off = g->str_offs[kv - g->kvs][i];
	*s = (const char *)g->base + off + 8;
	if (len)
		*len = (size_t)le64(g->base + off);
	return 0;
}

size_t sk_gguf_tensor_count(const sk_gguf *g) { return g->n_tensors; }

const sk_tensor_view *sk_gguf_tensor(const sk_gguf *g, size_t i)
{
	return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const sk_tensor_view *sk_gguf_find_tensor(const sk_gguf *g, const char *name)
{
	size_t i = hash_find(g->t_hash, g->t_hcap, name, tensor_name, g);
	return i == (size_t)-1 ? NULL : &g->tensors[i];
}

uint32_t sk_gguf_tensor_ggml_type(const sk_gguf *g, size_t i)
{
	return i < g->n_tensors ? g->ggml_types[i] : UINT32_MAX;
}
