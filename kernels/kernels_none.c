/* Stand-ins for the CUDA kernels when sokhan is configured without CUDA. */
#include "kernels/kernels.h"

#include <stdio.h>

int sk_cuda_built(void) { return 0; }

int sk_cuda_probe(char *reason, size_t cap)
{
	snprintf(reason, cap, "this build has no CUDA backend (configure --with-cuda)");
	return 0;
}

int sk_cuda_describe(int dev, char *buf, size_t cap)
{
	snprintf(buf, cap, "device %d: no CUDA backend", dev);
	return -1;
}

int sk_cuda_bf16_to_f32(const uint16_t *d_src, float *d_dst, size_t n, void *stream, char *err, size_t cap)
{
	(void)d_src, (void)d_dst, (void)n, (void)stream;
	snprintf(err, cap, "no CUDA backend");
	return -1;
}

int sk_cuda_bf16_to_f32_host(const uint16_t *src, float *dst, size_t n, char *err, size_t cap)
{
	(void)src, (void)dst, (void)n;
	snprintf(err, cap, "no CUDA backend");
	return -1;
}
