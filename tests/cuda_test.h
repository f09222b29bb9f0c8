/* What the GPU parity tests share: the two backends, random data that is
 * never zero, random bf16 and NF4 weights on both backends, device buffers
 * (uploaded, or poisoned with NaN so an element an op fails to write
 * shows), relative-L2 comparisons with a bound, and the GPU skip. Included
 * by tests/test_cuda*.c only. */
#ifndef SK_TESTS_CUDA_TEST_H
#define SK_TESTS_CUDA_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend/backend.h"
#include "engine/backend/backend_info.h"
#include "engine/error.h"
#include "engine/format/dtype.h"
#include "engine/format/nf4.h"
#include "tests/test.h"

static sk_backend *cpu, *gpu;
static char no_gpu[200];
static uint64_t rng = 0x243f6a8885a308d3ull;

/* uniform in [-1, 1), never exactly zero */
static inline float frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	float v = (float)((double)((rng >> 11) % 2000001u) / 1000000.0 - 1.0);
	return v == 0.0f ? 0.25f : v;
}

static inline float *rnd(size_t n, float scale)
{
	float *x = malloc(n * sizeof *x);
	for (size_t i = 0; i < n; i++)
		x[i] = frand() * scale;
	return x;
}

static inline float *copy_of(const float *x, size_t n)
{
	float *y = malloc(n * sizeof *y);
	memcpy(y, x, n * sizeof *y);
	return y;
}

static inline double rel_l2(const float *a, const float *ref, size_t n)
{
	double d = 0, s = 0;
	for (size_t i = 0; i < n; i++) {
		double e = (double)a[i] - ref[i];
		d += e * e;
		s += (double)ref[i] * ref[i];
	}
	if (!(d == d))
		return INFINITY; /* a NaN: an element never written, or a real NaN */
	return s > 0 ? sqrt(d / s) : sqrt(d);
}

static inline void *dev(const void *host, size_t bytes)
{
	void *d = gpu->ops->alloc(gpu, bytes, "test");
	if (d && host)
		gpu->ops->upload(gpu, d, host, bytes);
	return d;
}

static inline float *dev_f(const float *host, size_t n)
{
	return dev(host, n * sizeof(float));
}

/* A device buffer of n floats filled with NaN. */
static inline float *poisoned(size_t n)
{
	float *h = malloc(n * sizeof *h);
	for (size_t i = 0; i < n; i++)
		h[i] = NAN;
	float *d = dev_f(h, n);
	free(h);
	return d;
}

/* The device's n floats on the host (NaN when the copy fails). */
static inline float *back(const float *d, size_t n)
{
	float *h = malloc(n * sizeof *h);
	if (gpu->ops->download(gpu, h, d, n * sizeof(float)) != 0) {
		fprintf(stderr, "  download: %s\n", sk_error());
		for (size_t i = 0; i < n; i++)
			h[i] = NAN;
	}
	return h;
}

static inline void dfree(void *d)
{
	gpu->ops->free(gpu, d);
}

/* Compares host values got with the reference ref over n. */
static inline void expect_host(const char *what, const float *got, const float *ref, size_t n, double bound)
{
	double e = rel_l2(got, ref, n);
	printf("# %-58s rel L2 %.3g (bound %.0e)\n", what, e, bound);
	CHECK_MSG(e <= bound, "%s: rel L2 %g > %g", what, e, bound);
}

/* Compares the device result d with the host reference ref over n. */
static inline void expect(const char *what, const float *d, const float *ref, size_t n, double bound)
{
	float *h = back(d, n);
	expect_host(what, h, ref, n, bound);
	free(h);
}

#define NEED_GPU()                                  \
	do {                                        \
		if (!gpu) {                         \
			SKIP_GPU("no GPU: %s", no_gpu); \
			return;                     \
		}                                   \
	} while (0)

/* Both backends when a GPU is usable; else the reason, for the skips. */
static inline void cuda_test_open(void)
{
	sk_backend_info bi;
	sk_backend_probe(&bi);
	if (bi.cuda_devices > 0) {
		/* the reference is the CPU's fp32 path, not its 8-bit-activation kernels */
		setenv("SK_CPU_EXACT", "1", 1);
		cpu = sk_backend_new(SK_DEVICE_CPU, 2);
		gpu = sk_backend_new(SK_DEVICE_CUDA, 0);
		if (!gpu)
			snprintf(no_gpu, sizeof no_gpu, "%.190s", sk_error());
		else
			printf("# GPU: %s\n", bi.cuda_desc);
	} else {
		snprintf(no_gpu, sizeof no_gpu, "%.190s", bi.cuda_reason);
	}
}

/* A bf16 weight [rows, cols] with random values on the host (CPU tensor)
 * and its device copy; nf4_weight the same quantized to NF4. */
static inline void bf16_weight(int64_t rows, int64_t cols, uint16_t **host, sk_tensor *tc, sk_tensor *tg)
{
	*host = malloc((size_t)(rows * cols) * 2);
	for (int64_t i = 0; i < rows * cols; i++)
		(*host)[i] = sk_f32_to_bf16(frand() * 0.1f);
	memset(tc, 0, sizeof *tc);
	tc->dtype = SK_DT_BF16;
	tc->ndim = 2;
	tc->shape[0] = rows;
	tc->shape[1] = cols;
	tc->data = *host;
	tc->device = SK_DEVICE_CPU;
	*tg = *tc;
	CHECK(gpu->ops->load_tensor(gpu, tg, 0, "test weight") == 0);
}

static inline void nf4_weight(int64_t rows, int64_t cols, sk_nf4_tensor *q, sk_tensor *tc, sk_tensor *tg)
{
	float *f = rnd((size_t)(rows * cols), 0.1f);
	CHECK(sk_nf4_quantize(f, rows * cols, 1, q) == 0);
	free(f);
	memset(tc, 0, sizeof *tc);
	tc->nf4 = 1;
	tc->ndim = 2;
	tc->shape[0] = rows;
	tc->shape[1] = cols;
	tc->data = q;
	*tg = *tc;
	CHECK(gpu->ops->load_tensor(gpu, tg, 0, "test NF4 weight") == 0);
}

/* Whether attention of a sequence without a cache (training's, a first
 * prompt's) runs through matrix products (unless SK_CUDA_EXACT=1,
 * SK_CUDA_GEMM=reference or SK_CUDA_ATTN_GEMM=0 takes it elsewhere: fp32,
 * and fp32 bounds), on bf16 operands (the default), TF32
 * (SK_CUDA_ATTN_BF16=0; 10-bit mantissas, 2^-11) or fp32
 * (SK_CUDA_ATTN_TF32=0), as kernels/context.cu decides. */
static inline int cuda_env_says(const char *name, const char *v)
{
	const char *e = getenv(name);
	return e && !strcmp(e, v);
}

static inline int attention_on_products(void)
{
	return !(getenv("SK_CUDA_EXACT") && !cuda_env_says("SK_CUDA_EXACT", "0")) &&
	       !cuda_env_says("SK_CUDA_GEMM", "reference") && !cuda_env_says("SK_CUDA_ATTN_GEMM", "0");
}

static inline int attention_on_bf16(void)
{
	return attention_on_products() && !cuda_env_says("SK_CUDA_ATTN_TF32", "0") &&
	       !cuda_env_says("SK_CUDA_ATTN_BF16", "0");
}

static inline int attention_on_tf32(void)
{
	return attention_on_products() && !cuda_env_says("SK_CUDA_ATTN_TF32", "0") &&
	       cuda_env_says("SK_CUDA_ATTN_BF16", "0");
}

/* The relative L2 bound for such attention's outputs: bf16 operands (8-bit
 * mantissas, 2^-9) 2e-2; TF32's 5e-3; else the caller's fp32 bound. */
static inline double attention_products_bound(double fp32)
{
	if (attention_on_bf16())
		return 2e-2;
	return attention_on_tf32() ? 5e-3 : fp32;
}

#endif
