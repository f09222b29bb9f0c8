/* The CUDA backend's host side: its ops table over kernels/kernels.h, the
 * weights on the device (bf16, or NF4 as the CPU path quantized them; any
 * other stored type — f32, f16, GGUF blocks — is converted to bf16 once at
 * load), the per-layer-embedding table in pinned host memory, and the
 * adapter's factors. The training ops are in backend_cuda_backward.c. */
#include "engine/backend/backend_cuda_internal.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/format/dtype.h"
#include "engine/format/nf4.h"
#include "engine/format/quants.h"
#include "engine/i18n.h"
#include "engine/model/lora_internal.h"
#include "engine/threadpool.h"
#include "kernels/kernels.h"

static cuda_be *cb(sk_backend *be)
{
	return be->impl;
}

/* The context's failure as the op's error; the context is then clear, so
 * that the next op does not report this one as its own. */
int sk_cuda_be_fail(sk_backend *be)
{
	int rc = sk_fail("%s", sk_cuda_error(cb(be)->c));
	sk_cuda_check(cb(be)->c);
	return rc;
}

#define fail_cuda sk_cuda_be_fail

static int remember(cuda_be *b, void *p, int host)
{
	if (b->n_own == b->cap_own) {
		size_t nc = b->cap_own ? 2 * b->cap_own : 256;
		owned *o = realloc(b->own, nc * sizeof *o);
		if (!o)
			return -1;
		b->own = o;
		b->cap_own = nc;
	}
	b->own[b->n_own++] = (owned){ p, host };
	return 0;
}

static void *dev_alloc(sk_backend *be, size_t bytes, const char *what)
{
	cuda_be *b = cb(be);
	void *p = sk_cuda_alloc(b->c, bytes, what);
	if (!p) {
		fail_cuda(be);
		return NULL;
	}
	if (remember(b, p, 0) != 0) {
		sk_cuda_free(b->c, p);
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	return p;
}

static sk_cuda_weight *new_weight(cuda_be *b, const sk_tensor *t);

static const sk_cuda_weight *weight_of(const sk_tensor *t)
{
	return t->device == SK_DEVICE_CUDA ? t->data : NULL;
}


/* ---- memory ops ---- */

static void *op_alloc(sk_backend *be, size_t bytes, const char *what)
{
	void *p = sk_cuda_alloc(cb(be)->c, bytes, what);
	if (!p) { /* reported here and by the NULL: the context does not keep it for the next op */
		fail_cuda(be);
		sk_cuda_check(cb(be)->c);
	}
	return p;
}

static void op_free(sk_backend *be, void *p)
{
	sk_cuda_free(cb(be)->c, p);
}

static int op_upload(sk_backend *be, void *dst, const void *src, size_t bytes)
{
	return sk_cuda_upload(cb(be)->c, dst, src, bytes) ? fail_cuda(be) : 0;
}

static int op_download(sk_backend *be, void *dst, const void *src, size_t bytes)
{
	return sk_cuda_download(cb(be)->c, dst, src, bytes) ? fail_cuda(be) : 0;
}

static void op_scale(sk_backend *be, const float *x, int64_t count, float s, float *y)
{
	PROF(be, "scale", sk_cuda_scale(cb(be)->c, x, count, s, y));
}

static void op_zero(sk_backend *be, float *x, int64_t count)
{
	PROF(be, "zero", sk_cuda_zero(cb(be)->c, x, count));
}

static void op_gather(sk_backend *be, const float *x, int64_t dim, const int64_t *idx, int64_t n, float *y)
{
	PROF(be, "gather_rows", sk_cuda_gather_rows(cb(be)->c, x, dim, idx, n, y));
}

static void op_scatter(sk_backend *be, const float *x, int64_t dim, const int64_t *idx, int64_t n, float *y)
{
	PROF(be, "scatter_rows", sk_cuda_scatter_rows(cb(be)->c, x, dim, idx, n, y));
}

static void op_ring_write_many(sk_backend *be, int64_t n, int64_t dim, const int32_t *pos, const sk_ring_dst *w,
                               int count)
{
	sk_cuda_ring_dst d[SK_CUDA_RING_MANY];
	for (int i0 = 0; i0 < count; i0 += SK_CUDA_RING_MANY) {
		int k = count - i0 < SK_CUDA_RING_MANY ? count - i0 : SK_CUDA_RING_MANY;
		for (int i = 0; i < k; i++)
			d[i] = (sk_cuda_ring_dst){ w[i0 + i].x, w[i0 + i].ring, w[i0 + i].cap };
		PROF(be, "ring_write_many", sk_cuda_ring_write_many(cb(be)->c, n, dim, pos, d, k));
	}
}

static void op_ring_write(sk_backend *be, const float *x, int64_t n, int64_t dim, float *ring, int64_t cap,
                          const int32_t *pos)
{
	PROF(be, "ring_write", sk_cuda_ring_write(cb(be)->c, x, n, dim, ring, cap, pos));
}

/* ---- weights ---- */

/* Rows of t converted to bf16 into host memory: row r at dst + (r - base) · cols */
typedef struct {
	const sk_tensor *t;
	uint16_t *dst;
	int64_t cols, rb, base;
	atomic_int failed; /* 1: the type cannot be read, 2: out of memory */
} host_bf16_job;

static int host_bf16_failure(host_bf16_job *j, const char *what)
{
	int f = atomic_load(&j->failed);
	if (f == 2)
		return sk_fail("%s", _("out of memory"));
	return f ? sk_fail(_("%s: type %s cannot be read"), what, sk_dtype_name(j->t->dtype)) : 0;
}

#define BF16_CHUNK_VALUES (1 << 22) /* the float buffer of a conversion */

/* Rows [r0, r1) of a host_bf16_job, through a float buffer of at most 4 M values */
static void host_bf16_part(void *ctx, int64_t r0, int64_t r1, int tid)
{
	(void)tid;
	host_bf16_job *j = ctx;
	int64_t chunk = BF16_CHUNK_VALUES / (j->cols > 0 ? j->cols : 1);
	if (chunk < 1)
		chunk = 1;
	if (r1 - r0 < chunk)
		chunk = r1 - r0;
	float *f = chunk > 0 ? malloc((size_t)(chunk * j->cols) * sizeof *f) : NULL;
	if (chunk > 0 && !f) {
		atomic_store(&j->failed, 2);
		return;
	}
	for (int64_t r = r0; r < r1; r += chunk) {
		int64_t nr = r1 - r < chunk ? r1 - r : chunk;
		if (sk_dequantize(j->t->dtype, (const char *)j->t->data + r * j->rb, f, nr * j->cols) != 0) {
			atomic_store(&j->failed, 1);
			break;
		}
		uint16_t *out = j->dst + (r - j->base) * j->cols;
		for (int64_t i = 0; i < nr * j->cols; i++)
			out[i] = sk_f32_to_bf16(f[i]);
	}
	free(f);
}

/* Converts rows of a stored tensor to bf16 on the host, a bounded chunk at
 * a time, into dst (device or pinned host memory). Into host memory the
 * rows are shared out over the cores: the per-layer table of E4B is 2.35 G
 * values. */
static int upload_as_bf16(sk_backend *be, const sk_tensor *t, uint16_t *dst, int host_dst, const char *what)
{
	int64_t rows = sk_tensor_rows(t), cols = sk_tensor_cols(t), rb = sk_tensor_row_bytes(t);
	if (t->ndim != 2 || rb < 0)
		return sk_fail(_("%s: a %d-dimensional %s tensor cannot be moved to the GPU"), what, t->ndim,
		               sk_dtype_name(t->dtype));
	if (t->dtype == SK_DT_BF16) {
		if (host_dst) {
			memcpy(dst, t->data, (size_t)(rows * cols) * 2);
			return 0;
		}
		return op_upload(be, dst, t->data, (size_t)(rows * cols) * 2);
	}
	if (host_dst) {
		host_bf16_job j = { t, dst, cols, rb, 0, 0 };
		sk_threadpool *pool = sk_threadpool_new(0); /* NULL: all on this thread */
		sk_threadpool_for(pool, rows, 1, host_bf16_part, &j);
		sk_threadpool_free(pool);
		return host_bf16_failure(&j, what);
	}
	/* to the device: a chunk of rows at a time through one host buffer */
	int64_t chunk = BF16_CHUNK_VALUES / (cols > 0 ? cols : 1);
	if (chunk < 1)
		chunk = 1;
	uint16_t *h = malloc((size_t)(chunk * cols) * sizeof *h);
	if (!h)
		return sk_fail("%s", _("out of memory"));
	int rc = 0;
	for (int64_t r0 = 0; rc == 0 && r0 < rows; r0 += chunk) {
		int64_t nr = rows - r0 < chunk ? rows - r0 : chunk;
		host_bf16_job j = { t, h, cols, rb, r0, 0 };
		host_bf16_part(&j, r0, r0 + nr, 0);
		if ((rc = host_bf16_failure(&j, what)) == 0)
			rc = op_upload(be, dst + r0 * cols, h, (size_t)(nr * cols) * 2);
	}
	free(h);
	return rc;
}

static int op_load_tensor(sk_backend *be, sk_tensor *t, int host_resident, const char *what)
{
	cuda_be *b = cb(be);
	if (t->device == SK_DEVICE_CUDA)
		return 0;
	if (t->ndim != 2)
		return sk_fail(_("%s: a %d-dimensional tensor cannot be moved to the GPU"), what, t->ndim);
	sk_cuda_weight *w = new_weight(b, t);
	if (!w)
		return -1;
	int64_t n = w->rows * w->cols;
	if (t->nf4) {
		const sk_nf4_tensor *q = t->data;
		int64_t nb = (n + SK_NF4_BLOCK - 1) / SK_NF4_BLOCK, nn = (nb + SK_NF4_NESTED_BLOCK - 1) / SK_NF4_NESTED_BLOCK;
		w->kind = SK_CUDA_W_NF4;
		uint8_t *p = dev_alloc(be, (size_t)(n + 1) / 2, what);
		if (!p || op_upload(be, p, q->packed, (size_t)(n + 1) / 2) != 0)
			return -1;
		w->packed = p;
		if (q->double_quant) {
			uint8_t *aq = dev_alloc(be, (size_t)nb, what);
			float *ne = dev_alloc(be, (size_t)nn * sizeof(float), what);
			if (!aq || !ne || op_upload(be, aq, q->absmax_q, (size_t)nb) != 0 ||
			    op_upload(be, ne, q->nested_absmax, (size_t)nn * sizeof(float)) != 0)
				return -1;
			w->absmax_q = aq;
			w->nested = ne;
			w->offset = q->nested_offset;
		} else {
			float *am = dev_alloc(be, (size_t)nb * sizeof(float), what);
			if (!am || op_upload(be, am, q->absmax, (size_t)nb * sizeof(float)) != 0)
				return -1;
			w->absmax = am;
		}
	} else {
		w->kind = SK_CUDA_W_BF16;
		size_t bytes = (size_t)n * 2;
		if (host_resident) {
			void *dp = NULL;
			uint16_t *h = sk_cuda_host_alloc(b->c, bytes, what, &dp);
			if (!h)
				return fail_cuda(be);
			if (remember(b, h, 1) != 0) {
				sk_cuda_host_free(b->c, h);
				return sk_fail("%s", _("out of memory"));
			}
			if (upload_as_bf16(be, t, h, 1, what) != 0)
				return -1;
			w->bf16 = dp;
		} else {
			uint16_t *d = dev_alloc(be, bytes, what);
			if (!d || upload_as_bf16(be, t, d, 0, what) != 0)
				return -1;
			w->bf16 = d;
		}
		t->dtype = SK_DT_BF16;
	}
	t->data = w;
	t->device = SK_DEVICE_CUDA;
	return 0;
}

/* A new weight record for t (appended to the backend's list). */
static sk_cuda_weight *new_weight(cuda_be *b, const sk_tensor *t)
{
	sk_cuda_weight *w = calloc(1, sizeof *w);
	if (w && b->n_w == b->cap_w) {
		size_t nc = b->cap_w ? 2 * b->cap_w : 256;
		sk_cuda_weight **a = realloc(b->weights, nc * sizeof *a);
		if (!a) {
			free(w);
			return NULL;
		}
		b->weights = a;
		b->cap_w = nc;
	}
	if (!w) {
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	b->weights[b->n_w++] = w;
	w->rows = t->shape[0];
	w->cols = t->shape[1];
	return w;
}

static int op_random_tensor(sk_backend *be, sk_tensor *t, int nf4, int host_resident, float scale, uint64_t seed,
                            const char *what)
{
	cuda_be *b = cb(be);
	if (t->ndim != 2)
		return sk_fail(_("%s: a %d-dimensional tensor cannot be made on the GPU"), what, t->ndim);
	sk_cuda_weight *w = new_weight(b, t);
	if (!w)
		return -1;
	int64_t n = w->rows * w->cols;
	if (nf4) {
		int64_t nb = (n + SK_NF4_BLOCK - 1) / SK_NF4_BLOCK, nn = (nb + SK_NF4_NESTED_BLOCK - 1) / SK_NF4_NESTED_BLOCK;
		uint8_t *p = dev_alloc(be, (size_t)(n + 1) / 2, what), *aq = p ? dev_alloc(be, (size_t)nb, what) : NULL;
		float *ne = aq ? dev_alloc(be, (size_t)nn * sizeof(float), what) : NULL;
		if (!ne)
			return -1;
		sk_cuda_fill_random_nf4(b->c, p, aq, ne, n, scale, seed);
		w->kind = SK_CUDA_W_NF4;
		w->packed = p;
		w->absmax_q = aq;
		w->nested = ne;
		t->nf4 = 1;
	} else if (host_resident) {
		/* filled on the device a slice at a time, then copied down */
		void *dp = NULL;
		uint16_t *h = sk_cuda_host_alloc(b->c, (size_t)n * 2, what, &dp);
		if (!h)
			return fail_cuda(be);
		if (remember(b, h, 1) != 0) {
			sk_cuda_host_free(b->c, h);
			return sk_fail("%s", _("out of memory"));
		}
		int64_t chunk = (int64_t)1 << 26;
		uint16_t *tmp = sk_cuda_alloc(b->c, (size_t)(n < chunk ? n : chunk) * 2, what);
		if (!tmp)
			return fail_cuda(be);
		for (int64_t i = 0; i < n; i += chunk) {
			int64_t k = n - i < chunk ? n - i : chunk;
			sk_cuda_fill_random_bf16(b->c, tmp, k, scale, seed + (uint64_t)i);
			if (sk_cuda_download(b->c, h + i, tmp, (size_t)k * 2) != 0) {
				sk_cuda_free(b->c, tmp);
				return fail_cuda(be);
			}
		}
		sk_cuda_free(b->c, tmp);
		w->kind = SK_CUDA_W_BF16;
		w->bf16 = dp;
		t->dtype = SK_DT_BF16;
	} else {
		uint16_t *d = dev_alloc(be, (size_t)n * 2, what);
		if (!d)
			return -1;
		sk_cuda_fill_random_bf16(b->c, d, n, scale, seed);
		w->kind = SK_CUDA_W_BF16;
		w->bf16 = d;
		t->dtype = SK_DT_BF16;
	}
	t->data = w;
	t->device = SK_DEVICE_CUDA;
	return sk_cuda_check(b->c) ? fail_cuda(be) : 0;
}

static int op_slice_rows(sk_backend *be, const sk_tensor *t, int64_t r0, int64_t n, sk_tensor *out)
{
	cuda_be *b = cb(be);
	const sk_cuda_weight *w = weight_of(t);
	if (!w || w->kind != SK_CUDA_W_BF16 || r0 < 0 || n < 1 || r0 + n > w->rows)
		return sk_fail("%s", _("slice: not a bf16 matrix on the GPU, or rows out of range"));
	sk_cuda_weight *s = &b->slices[b->next_slice];
	b->next_slice = (b->next_slice + 1) % (int)(sizeof b->slices / sizeof *b->slices);
	*s = *w;
	s->rows = n;
	s->bf16 = w->bf16 + r0 * w->cols;
	*out = *t;
	out->shape[0] = n;
	out->data = s;
	return 0;
}

static int op_load_vector(sk_backend *be, float **v, int64_t n, const char *what)
{
	float *d = dev_alloc(be, (size_t)n * sizeof(float), what);
	if (!d || op_upload(be, d, *v, (size_t)n * sizeof(float)) != 0)
		return -1;
	*v = d;
	return 0;
}

static void drop_adapter(cuda_be *b)
{
	if (b->dfactors)
		sk_cuda_free(b->c, b->dfactors);
	free(b->dpairs);
	b->dfactors = NULL;
	b->dpairs = NULL;
	b->lora = NULL;
}

static int op_set_adapter(sk_backend *be, const sk_lora *l)
{
	cuda_be *b = cb(be);
	sk_cuda_record_drop(b->c); /* recordings name the old factors */
	drop_adapter(b);
	if (!l)
		return 0;
	size_t slots = (size_t)l->num_layers * SK_LORA_NMOD, total = 0;
	for (size_t i = 0; i < slots; i++)
		if (l->pairs[i].A)
			total += (size_t)l->pairs[i].r * (size_t)(l->pairs[i].in + l->pairs[i].out);
	b->dpairs = calloc(slots ? slots : 1, sizeof *b->dpairs);
	b->dfactors = total ? sk_cuda_alloc(b->c, total * sizeof(float), _("the adapter")) : NULL;
	if (!b->dpairs || (total && !b->dfactors)) {
		int rc = b->dpairs ? fail_cuda(be) : sk_fail("%s", _("out of memory"));
		drop_adapter(b);
		return rc;
	}
	float *d = b->dfactors;
	for (size_t i = 0; i < slots; i++) {
		const sk_lora_pair *p = &l->pairs[i];
		if (!p->A)
			continue;
		size_t na = (size_t)p->r * (size_t)p->in, nb = (size_t)p->out * (size_t)p->r;
		if (op_upload(be, d, p->A, na * sizeof(float)) != 0 || op_upload(be, d + na, p->B, nb * sizeof(float)) != 0) {
			drop_adapter(b);
			return -1;
		}
		b->dpairs[i] = (sk_cuda_lora){ d, d + na, p->r, p->in, p->out, p->scale };
		d += na + nb;
	}
	b->lora = l;
	return 0;
}

/* ---- forward ops ---- */


static int op_linear(sk_backend *be, const sk_tensor *t, const float *x, int64_t n, float *y, const sk_lora_pair *lp,
                     const uint8_t *rows)
{
	cuda_be *b = cb(be);
	const sk_cuda_weight *w = weight_of(t);
	if (!w)
		return sk_fail("%s", _("linear: the weight is not on the GPU"));
	int bad;
	const sk_cuda_lora *dl = sk_cuda_be_pair(be, lp, &bad);
	if (bad)
		return sk_fail("%s", _("linear: the LoRA pair is not the GPU's adapter"));
	int r;
	PROF(be, n <= 8 ? (w->kind == SK_CUDA_W_NF4 ? "linear nf4 rows<=8" : "linear bf16 rows<=8")
	                : (w->kind == SK_CUDA_W_NF4 ? "linear nf4 gemm" : "linear bf16 gemm"),
	     r = sk_cuda_linear(b->c, w, x, n, y, dl, rows));
	return r ? fail_cuda(be) : 0;
}

/* The index of lp among l's pair slots, or -1. */
static ptrdiff_t slot_of(const sk_lora *l, const sk_lora_pair *lp)
{
	if (!l || !lp)
		return -1;
	size_t slots = (size_t)l->num_layers * SK_LORA_NMOD;
	return lp >= l->pairs && lp < l->pairs + slots ? lp - l->pairs : -1;
}

const sk_cuda_lora *sk_cuda_be_pair(sk_backend *be, const sk_lora_pair *lp, int *bad)
{
	cuda_be *b = cb(be);
	*bad = 0;
	if (!lp)
		return NULL;
	ptrdiff_t i = slot_of(b->train, lp);
	if (i >= 0)
		return &b->tpairs[i];
	if ((i = slot_of(b->lora, lp)) >= 0)
		return &b->dpairs[i];
	*bad = 1;
	return NULL;
}

float *sk_cuda_be_grad(sk_backend *be, const sk_lora_pair *lp, int is_b)
{
	cuda_be *b = cb(be);
	ptrdiff_t i = slot_of(b->train, lp);
	return i < 0 ? NULL : is_b ? b->tgrad_b[i] : b->tgrad_a[i];
}

static int op_linear2(sk_backend *be, const sk_tensor *t1, const sk_tensor *t2, const float *x, int64_t n, float *y1,
                      float *y2, const sk_lora_pair *l1, const sk_lora_pair *l2, const uint8_t *rows)
{
	const sk_cuda_weight *w1 = weight_of(t1), *w2 = weight_of(t2);
	int bad1, bad2;
	const sk_cuda_lora *d1 = sk_cuda_be_pair(be, l1, &bad1), *d2 = sk_cuda_be_pair(be, l2, &bad2);
	if (!w1 || !w2)
		return sk_fail("%s", _("linear: the weight is not on the GPU"));
	if (bad1 || bad2)
		return sk_fail("%s", _("linear: the LoRA pair is not the GPU's adapter"));
	int r;
	PROF(be, n <= 8 ? "linear pair rows<=8" : "linear pair gemm",
	     r = sk_cuda_linear2(cb(be)->c, w1, w2, x, n, y1, y2, d1, d2, rows));
	return r ? fail_cuda(be) : 0;
}

static int op_embed(sk_backend *be, const sk_tensor *table, const int32_t *ids, int64_t n, float scale, float *out)
{
	const sk_cuda_weight *w = weight_of(table);
	if (!w || w->kind != SK_CUDA_W_BF16)
		return sk_fail("%s", _("embedding: the table is not on the GPU in bf16"));
	int r;
	PROF(be, "embed", r = sk_cuda_embed(cb(be)->c, w->bf16, w->cols, ids, n, scale, out));
	return r ? fail_cuda(be) : 0;
}

static void op_rmsnorm(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *w, float eps, float *y)
{
	PROF(be, "rmsnorm", sk_cuda_rmsnorm(cb(be)->c, x, rows, dim, w, eps, y));
}

static void op_rope(sk_backend *be, float *x, int64_t n, int heads, int hd, const int32_t *pos, float theta,
                    float factor)
{
	PROF(be, "rope", sk_cuda_rope(cb(be)->c, x, n, heads, hd, pos, theta, factor));
}

static int op_attention(sk_backend *be, const float *q, int64_t n, const sk_attn_kv *kv, int nh, int nkv, int hd,
                        int window, float scale, float softcap, float *out)
{
	if (!kv->pos)
		return sk_fail("%s", _("attention: the GPU needs the rows' positions"));
	int r;
	PROF(be, "attention", r = sk_cuda_attention(cb(be)->c, q, n, kv->pos, kv->k_past, kv->v_past, kv->cap, kv->k_new,
	                                            kv->v_new, nh, nkv, hd, window, scale, softcap, out));
	return r ? fail_cuda(be) : 0;
}

/* The row spans as the kernels take them (the same two fields); NULL when out of memory */
sk_cuda_span *sk_cuda_be_spans(const sk_row_span *spans, int n)
{
	sk_cuda_span *s = malloc((size_t)(n > 0 ? n : 1) * sizeof *s);
	if (!s) {
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	for (int i = 0; i < n; i++)
		s[i] = (sk_cuda_span){ spans[i].row0, spans[i].n };
	return s;
}

static int op_attention_spans(sk_backend *be, const float *q, const float *k, const float *v, const int32_t *pos,
                              const sk_row_span *spans, int n_spans, int nh, int nkv, int hd, int window, float scale,
                              float softcap, float *out)
{
	if (!pos)
		return sk_fail("%s", _("attention: the GPU needs the rows' positions"));
	sk_cuda_span *s = sk_cuda_be_spans(spans, n_spans);
	if (!s)
		return -1;
	int r;
	PROF(be, "attention", r = sk_cuda_attention_spans(cb(be)->c, q, k, v, pos, s, n_spans, nh, nkv, hd, window,
	                                                  scale, softcap, out));
	free(s);
	return r ? fail_cuda(be) : 0;
}

static void op_router_predict(sk_backend *be, const float *x, int64_t rows, int64_t dim, int active,
                              const float *norm_w, float eps, const float *w, int A, const float *wp, float *modal,
                              float *p, const float *nw, float *nrm)
{
	PROF(be, "altup_router_predict",
	     sk_cuda_altup_router_predict(cb(be)->c, x, rows, dim, active, norm_w, eps, w, A, wp, modal, p, nw, nrm));
}

static void op_norm_add_norm(sk_backend *be, int64_t rows, int64_t dim, float eps, const sk_norm_add_norm *a)
{
	PROF(be, "norm_add_norm",
	     sk_cuda_norm_add_norm(cb(be)->c, rows, dim, eps, a->x, a->wx, a->a, a->z, a->wz, a->c, a->lam, a->scale,
	                           a->y, a->wy, a->yn));
}

static void op_norm_rope_qkv(sk_backend *be, int64_t n, int hd, float eps, const int32_t *pos, float theta,
                             float factor, const sk_qkv_norm *a)
{
	PROF(be, "norm_rope_qkv",
	     sk_cuda_norm_rope_qkv(cb(be)->c, n, hd, eps, pos, theta, factor, a->q, a->nh, a->qw, a->qo, a->k, a->v,
	                           a->nkv, a->kw, a->ko, a->vo));
}

static void op_norm_add_correct(sk_backend *be, int64_t rows, int64_t dim, int A, int active, float eps,
                                const sk_altup_tail *a)
{
	PROF(be, "altup_norm_add_correct",
	     sk_cuda_altup_norm_add_correct(cb(be)->c, rows, dim, A, active, eps, a->f, a->fw, a->h, a->y, a->p,
	                                    a->router_norm, a->router, a->wc, a->modal, a->out, a->vs, a->vin));
}

static void op_router_correct(sk_backend *be, const float *p, const float *y, int64_t rows, int64_t dim, int active,
                              const float *norm_w, float eps, const float *w, int A, const float *wc, float *modal,
                              float *c)
{
	PROF(be, "altup_router_correct",
	     sk_cuda_altup_router_correct(cb(be)->c, p, y, rows, dim, active, norm_w, eps, w, A, wc, modal, c));
}

static void op_norm_add_streams(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *w, float eps,
                                float *y, int A, int skip)
{
	PROF(be, "norm_add_streams", sk_cuda_norm_add_streams(cb(be)->c, x, rows, dim, w, eps, y, A, skip));
}

static void op_norm_add(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *w, float eps,
                        const float *a, const float *b, float scale, float *y)
{
	PROF(be, "norm_add", sk_cuda_norm_add(cb(be)->c, x, rows, dim, w, eps, a, b, scale, y));
}

static void op_norm_rope(sk_backend *be, const float *x, int64_t n, int heads, int hd, const float *w, float eps,
                         const int32_t *pos, float theta, float factor, float *y)
{
	PROF(be, "norm_rope", sk_cuda_norm_rope(cb(be)->c, x, n, heads, hd, w, eps, pos, theta, factor, y));
}

static void op_add(sk_backend *be, const float *a, const float *b, int64_t count, float scale, float *y)
{
	PROF(be, "add", sk_cuda_add(cb(be)->c, a, b, count, scale, y));
}

static void op_mul_rows(sk_backend *be, const float *x, const float *w, int64_t w_stride, int64_t rows, int64_t dim,
                        float *y)
{
	PROF(be, "mul_rows", sk_cuda_mul_rows(cb(be)->c, x, w, w_stride, rows, dim, y));
}

static void op_gelu_mul(sk_backend *be, float *g, const float *u, int64_t u_stride, int64_t rows, int64_t dim, float z)
{
	PROF(be, "gelu_mul", sk_cuda_gelu_mul(cb(be)->c, g, u, u_stride, rows, dim, z, g));
}

static void op_to_bf16(sk_backend *be, const float *x, int64_t n, uint16_t *y)
{
	PROF(be, "to_bf16", sk_cuda_pack_bf16(cb(be)->c, x, n, y));
}

static void op_from_bf16(sk_backend *be, const uint16_t *y, int64_t n, float *x)
{
	PROF(be, "from_bf16", sk_cuda_unpack_bf16(cb(be)->c, y, n, x));
}

static void op_gelu_mul_to(sk_backend *be, const float *g, const float *u, int64_t u_stride, int64_t rows,
                           int64_t dim, float z, float *out)
{
	PROF(be, "gelu_mul", sk_cuda_gelu_mul(cb(be)->c, g, u, u_stride, rows, dim, z, out));
}

static void op_softcap(sk_backend *be, float *x, int64_t count, float cap)
{
	PROF(be, "softcap", sk_cuda_softcap(cb(be)->c, x, count, cap));
}

static void op_rescale_rms(sk_backend *be, float *u, const float *ref, int64_t rows, int64_t dim)
{
	PROF(be, "rescale_rms", sk_cuda_rescale_rms(cb(be)->c, u, ref, rows, dim));
}

static void op_router(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *norm_w, float eps,
                      const float *w, int A, float *out)
{
	PROF(be, "altup_router", sk_cuda_altup_router(cb(be)->c, x, rows, dim, norm_w, eps, w, A, out));
}

static void op_predict(sk_backend *be, const float *x, int64_t rows, int64_t dim, int A, const float *wp,
                       const float *modal, float *p)
{
	PROF(be, "altup_predict", sk_cuda_altup_predict(cb(be)->c, x, rows, dim, A, wp, modal, p));
}

static void op_correct(sk_backend *be, const float *p, const float *y, int64_t rows, int64_t dim, int A, int active,
                       const float *wc, const float *modal, float *c)
{
	PROF(be, "altup_correct", sk_cuda_altup_correct(cb(be)->c, p, y, rows, dim, A, active, wc, modal, c));
}

/* ---- recording ---- */

static int op_record_begin(sk_backend *be, uint64_t key)
{
	int r = sk_cuda_record_begin(cb(be)->c, key);
	return r < 0 ? fail_cuda(be) : r;
}

static int op_record_end(sk_backend *be, int ok)
{
	int r = sk_cuda_record_end(cb(be)->c, ok);
	return r < 0 ? fail_cuda(be) : r;
}

static void op_record_drop(sk_backend *be)
{
	sk_cuda_record_drop(cb(be)->c);
}

static void op_mem_info(sk_backend *be, uint64_t *free_bytes, uint64_t *total_bytes)
{
	sk_cuda_mem_info(cb(be)->c, free_bytes, total_bytes);
}

static int op_recorded_nodes(sk_backend *be)
{
	return sk_cuda_record_nodes(cb(be)->c);
}

static void op_profile_report(sk_backend *be, void *file)
{
	if (sk_cuda_profiling(cb(be)->c))
		sk_cuda_prof_report(cb(be)->c, file);
}

static double op_copy_bandwidth(sk_backend *be)
{
	return sk_cuda_copy_bandwidth(cb(be)->c, (size_t)1 << 30);
}

/* the engine's row and the kernels' row are one layout */
_Static_assert(sizeof(sk_sample_row) == sizeof(sk_cuda_sample_row), "sample row layout");
_Static_assert(offsetof(sk_sample_row, u) == offsetof(sk_cuda_sample_row, u), "sample row layout");
_Static_assert(offsetof(sk_sample_row, top_k) == offsetof(sk_cuda_sample_row, top_k), "sample row layout");

static int op_sample(sk_backend *be, float *logits, int64_t n, int64_t vocab, const sk_sample_row *rows,
                     const uint32_t *seen, int64_t words, const int32_t *row_seq, int32_t *ids)
{
	int r;
	PROF(be, "sample", r = sk_cuda_sample(cb(be)->c, logits, n, vocab, (const sk_cuda_sample_row *)rows, seen, words,
	                                      row_seq, ids));
	return r ? fail_cuda(be) : 0;
}

static void op_mark_seen(sk_backend *be, uint32_t *seen, int64_t words, const int32_t *ids, const int32_t *seq,
                         int64_t n)
{
	PROF(be, "mark_seen", sk_cuda_mark_seen(cb(be)->c, seen, words, ids, seq, n));
}

static const sk_backend_ops cuda_ops = {
	.name = "cuda",
	.host_memory = 0,
	.alloc = op_alloc,
	.free = op_free,
	.upload = op_upload,
	.download = op_download,
	.scale = op_scale,
	.zero = op_zero,
	.gather_rows = op_gather,
	.scatter_rows = op_scatter,
	.ring_write = op_ring_write,
	.ring_write_many = op_ring_write_many,
	.load_tensor = op_load_tensor,
	.load_vector = op_load_vector,
	.random_tensor = op_random_tensor,
	.slice_rows = op_slice_rows,
	.set_adapter = op_set_adapter,
	.train_begin = sk_cuda_train_begin,
	.train_upload = sk_cuda_train_upload,
	.train_download_grads = sk_cuda_train_download_grads,
	.train_optim_begin = sk_cuda_train_optim_begin,
	.train_optim_step = sk_cuda_train_optim_step,
	.train_optim_sync = sk_cuda_train_optim_sync,
	.record_begin = op_record_begin,
	.record_end = op_record_end,
	.record_drop = op_record_drop,
	.mem_info = op_mem_info,
	.sample = op_sample,
	.mark_seen = op_mark_seen,
	.copy_bandwidth = op_copy_bandwidth,
	.recorded_nodes = op_recorded_nodes,
	.profile_report = op_profile_report,
	.linear = op_linear,
	.linear2 = op_linear2,
	.embed = op_embed,
	.rmsnorm = op_rmsnorm,
	.rope = op_rope,
	.norm_add = op_norm_add,
	.norm_add_streams = op_norm_add_streams,
	.norm_rope = op_norm_rope,
	.attention = op_attention,
	.attention_spans = op_attention_spans,
	.add = op_add,
	.mul_rows = op_mul_rows,
	.gelu_mul = op_gelu_mul,
	.gelu_mul_to = op_gelu_mul_to,
	.to_bf16 = op_to_bf16,
	.from_bf16 = op_from_bf16,
	.softcap = op_softcap,
	.rescale_rms = op_rescale_rms,
	.altup_router = op_router,
	.altup_predict = op_predict,
	.altup_correct = op_correct,
	.altup_router_predict = op_router_predict,
	.norm_add_norm = op_norm_add_norm,
	.norm_rope_qkv = op_norm_rope_qkv,
	.altup_norm_add_correct = op_norm_add_correct,
	.altup_router_correct = op_router_correct,
	SK_CUDA_BACKWARD_OPS,
};

sk_backend *sk_backend_cuda_new(int dev)
{
	char err[512];
	sk_backend *be = calloc(1, sizeof *be);
	cuda_be *b = calloc(1, sizeof *b);
	if (!be || !b) {
		free(be);
		free(b);
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	b->c = sk_cuda_open(dev, err, sizeof err);
	if (!b->c) {
		sk_fail(_("the CUDA backend is unavailable: %s"), err);
		free(b);
		free(be);
		return NULL;
	}
	be->ops = &cuda_ops;
	be->device = SK_DEVICE_CUDA;
	be->impl = b;
	return be;
}

void sk_backend_cuda_free(sk_backend *be)
{
	cuda_be *b = cb(be);
	drop_adapter(b);
	sk_cuda_train_free(be);
	for (size_t i = 0; i < b->n_own; i++) {
		if (b->own[i].host)
			sk_cuda_host_free(b->c, b->own[i].p);
		else
			sk_cuda_free(b->c, b->own[i].p);
	}
	free(b->own);
	for (size_t i = 0; i < b->n_w; i++)
		free(b->weights[i]);
	free(b->weights);
	sk_cuda_close(b->c);
	free(b);
	free(be);
}

sk_cuda *sk_backend_cuda_context(sk_backend *be)
{
	return be && be->device == SK_DEVICE_CUDA ? cb(be)->c : NULL;
}
