/* The CPU backend: its ops table, state (thread pool, per-thread scratch),
 * kernel dispatch and row dequantization. */
#include "engine/backend/backend_cpu.h"
#include "engine/backend/backend_cpu_backward.h"
#include "engine/backend/backend_cpu_exact.h"
#include "engine/backend/backend_cuda.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/format/nf4.h"
#include "engine/format/quants.h"

#define CPU_OPS_COMMON \
	.name = "cpu", \
	.host_memory = 1, \
	.alloc = sk_cpu_alloc, \
	.free = sk_cpu_free, \
	.upload = sk_cpu_copy_bytes, \
	.download = sk_cpu_copy_bytes, \
	.scale = sk_cpu_scale, \
	.zero = sk_cpu_zero, \
	.gather_rows = sk_cpu_gather_rows, \
	.scatter_rows = sk_cpu_scatter_rows, \
	.ring_write = sk_cpu_ring_write, \
	.embed = sk_cpu_embed, \
	.rmsnorm = sk_cpu_rmsnorm, \
	.rope = sk_cpu_rope, \
	.norm_add = sk_cpu_norm_add, \
	.norm_rope = sk_cpu_norm_rope, \
	.add = sk_cpu_add, \
	.mul_rows = sk_cpu_mul_rows, \
	.softcap = sk_cpu_softcap, \
	.rescale_rms = sk_cpu_rescale_rms, \
	.altup_router = sk_cpu_altup_router, \
	.altup_predict = sk_cpu_altup_predict, \
	.altup_correct = sk_cpu_altup_correct, \
	SK_CPU_BACKWARD_OPS

/* Inference: quantized weights by integer dot products, attention by
 * blocks of sgemm, a vectorized GELU. */
static const sk_backend_ops cpu_ops = {
	CPU_OPS_COMMON,
	.linear = sk_cpu_linear,
	.linear2 = sk_cpu_linear2,
	.attention = sk_cpu_attention,
	.gelu_mul = sk_cpu_gelu_mul,
};

/* Training, and inference under SK_CPU_EXACT=1: every linear in fp32
 * against the dequantized weights (the loss a smooth function of the
 * adapter, as finite differences and the fp32 backward need), and the
 * attention and GELU computed as they were before the integer kernels,
 * bit for bit: the reference the other table is tested against. */
static const sk_backend_ops cpu_ops_exact = {
	CPU_OPS_COMMON,
	.linear = sk_cpu_linear_exact,
	.attention = sk_cpu_attention_ref,
	.gelu_mul = sk_cpu_gelu_mul_ref,
};

const sk_backend_ops *sk_backend_cpu_exact_ops(void)
{
	return &cpu_ops_exact;
}

int sk_backend_cpu_quantizes(const sk_backend_ops *ops)
{
	return ops == &cpu_ops;
}

int sk_cpu_have_avx2(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	static int have = -1;
	if (have < 0) {
		__builtin_cpu_init();
		have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && getenv("SK_NO_AVX2") == NULL;
	}
	return have;
#else
	return 0;
#endif
}

sk_cpu_dot_fn sk_cpu_dot_kernel(sk_dtype t)
{
	return sk_cpu_have_avx2() ? sk_cpu_dot_kernel_avx2(t) : NULL;
}

float sk_cpu_sdot(const float *a, const float *b, int64_t n)
{
	if (sk_cpu_have_avx2())
		return sk_cpu_sdot_avx2(a, b, n);
	/* four partial sums: shorter dependency chains */
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	int64_t i = 0;
	for (; i + 4 <= n; i += 4) {
		s0 += a[i] * b[i];
		s1 += a[i + 1] * b[i + 1];
		s2 += a[i + 2] * b[i + 2];
		s3 += a[i + 3] * b[i + 3];
	}
	for (; i < n; i++)
		s0 += a[i] * b[i];
	return (s0 + s1) + (s2 + s3);
}

float *sk_cpu_scratch_get(sk_cpu_scratch *s, size_t n)
{
	n += 64;
	if (s->cap >= n)
		return s->buf;
	void *p = NULL;
	if (posix_memalign(&p, 64, n * sizeof(float)) != 0)
		return NULL;
	free(s->buf);
	s->buf = p;
	s->cap = n;
	return s->buf;
}

const float *sk_cpu_weight_rows(const sk_tensor *w, int64_t r0, int64_t nr, sk_cpu_scratch *s)
{
	int64_t in = sk_tensor_cols(w);
	if (w->nf4) {
		/* NF4 dequantizes from a 64-aligned element; the slack absorbs the offset */
		const sk_nf4_tensor *t = w->data;
		int64_t start = r0 * in, aligned = start - start % SK_NF4_BLOCK;
		float *buf = sk_cpu_scratch_get(s, (size_t)(nr * in + SK_NF4_BLOCK));
		if (!buf)
			return NULL;
		sk_nf4_dequantize(t, aligned, start - aligned + nr * in, buf);
		return buf + (start - aligned);
	}
	int64_t rb = sk_dtype_nbytes(w->dtype, in);
	float *buf = sk_cpu_scratch_get(s, (size_t)(nr * in));
	if (!buf || rb < 0)
		return NULL;
	if (sk_dequantize(w->dtype, (const char *)w->data + rb * r0, buf, nr * in) != 0)
		return NULL;
	return buf;
}

sk_backend *sk_backend_cpu_new(int threads)
{
	sk_backend *be = calloc(1, sizeof *be);
	sk_cpu *c = calloc(1, sizeof *c);
	if (!be || !c) {
		free(be);
		free(c);
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	c->pool = sk_threadpool_new(threads);
	if (!c->pool) {
		free(be);
		free(c);
		return NULL;
	}
	c->nthreads = sk_threadpool_size(c->pool);
	c->scratch = calloc((size_t)c->nthreads, sizeof *c->scratch);
	if (!c->scratch) {
		sk_threadpool_free(c->pool);
		free(be);
		free(c);
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	c->exact = getenv("SK_CPU_EXACT") != NULL && strcmp(getenv("SK_CPU_EXACT"), "0") != 0;
	/* we split matrices over our own threads; OpenBLAS runs each tile on one */
	openblas_set_num_threads(1);
	be->ops = c->exact ? &cpu_ops_exact : &cpu_ops;
	be->device = SK_DEVICE_CPU;
	be->impl = c;
	return be;
}

sk_backend *sk_backend_new(sk_device device, int threads)
{
	if (device == SK_DEVICE_CUDA)
		return sk_backend_cuda_new(0);
	if (device == SK_DEVICE_AUTO) {
		sk_backend_info bi;
		sk_backend_probe(&bi);
		if (bi.cuda_devices > 0)
			return sk_backend_cuda_new(0);
	}
	return sk_backend_cpu_new(threads);
}

void sk_backend_free(sk_backend *be)
{
	if (!be)
		return;
	if (be->device == SK_DEVICE_CUDA) {
		sk_backend_cuda_free(be);
		return;
	}
	sk_cpu *c = be->impl;
	if (c) {
		sk_threadpool_free(c->pool);
		for (int i = 0; i < c->nthreads; i++)
			free(c->scratch[i].buf);
		free(c->scratch);
		free(c->lora.buf);
		free(c->q8.buf);
		free(c->attn.buf);
		free(c);
	}
	free(be);
}

int sk_backend_threads(const sk_backend *be)
{
	return be && be->impl ? ((const sk_cpu *)be->impl)->nthreads : 1;
}
