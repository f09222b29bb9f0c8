/* CPU ops: memory (the backend's memory is host memory) and data movement
 * (copies, scaling, row gathers and scatters, ring-buffer writes). */
#include "engine/backend/backend_cpu.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"

void *sk_cpu_alloc(sk_backend *be, size_t bytes, const char *what)
{
	(void)be;
	/* calloc: pages never written (an unused KV cache) cost no resident memory */
	void *p = calloc(1, bytes ? bytes : 1);
	if (!p)
		sk_fail(_("out of memory: %zu bytes for %s"), bytes, what);
	return p;
}

void sk_cpu_free(sk_backend *be, void *p)
{
	(void)be;
	free(p);
}

int sk_cpu_copy_bytes(sk_backend *be, void *dst, const void *src, size_t bytes)
{
	(void)be;
	if (dst != src && bytes)
		memmove(dst, src, bytes);
	return 0;
}

void sk_cpu_scale(sk_backend *be, const float *x, int64_t count, float s, float *y)
{
	(void)be;
	if (s == 1.0f) {
		if (x != y)
			memmove(y, x, (size_t)count * sizeof(float));
		return;
	}
	for (int64_t i = 0; i < count; i++)
		y[i] = x[i] * s;
}

void sk_cpu_zero(sk_backend *be, float *x, int64_t count)
{
	(void)be;
	memset(x, 0, (size_t)count * sizeof(float));
}

void sk_cpu_gather_rows(sk_backend *be, const float *x, int64_t dim, const int64_t *idx, int64_t n, float *y)
{
	(void)be;
	for (int64_t i = 0; i < n; i++)
		memcpy(y + i * dim, x + idx[i] * dim, (size_t)dim * sizeof(float));
}

void sk_cpu_scatter_rows(sk_backend *be, const float *x, int64_t dim, const int64_t *idx, int64_t n, float *y)
{
	(void)be;
	for (int64_t i = 0; i < n; i++)
		memcpy(y + idx[i] * dim, x + i * dim, (size_t)dim * sizeof(float));
}

void sk_cpu_ring_write(sk_backend *be, const float *x, int64_t n, int64_t dim, float *ring, int64_t cap,
                       const int32_t *pos)
{
	(void)be;
	for (int64_t i = n > cap ? n - cap : 0; i < n; i++)
		memcpy(ring + (pos[i] % cap) * dim, x + i * dim, (size_t)dim * sizeof(float));
}
