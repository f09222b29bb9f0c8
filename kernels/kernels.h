/* The CUDA kernels' plain C interface. Built from the .cu files in this
 * folder when CUDA is configured; otherwise kernels_none.c answers that the
 * backend is not built. Nothing here includes engine headers. */
#ifndef SK_KERNELS_H
#define SK_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when this binary was built with the CUDA backend. */
int sk_cuda_built(void);

/* Number of usable CUDA devices (0 when none, the driver is missing, or the
 * backend is not built); when 0, why is written to reason. */
int sk_cuda_probe(char *reason, size_t cap);

/* Name, memory and compute capability of device dev, as one line. */
int sk_cuda_describe(int dev, char *buf, size_t cap);

/* bf16 -> f32 on the device, between device buffers, on the given stream
 * (NULL = default stream). Returns 0, or -1 with a message in err. */
int sk_cuda_bf16_to_f32(const uint16_t *d_src, float *d_dst, size_t n, void *stream,
                        char *err, size_t cap);

/* Same conversion for host buffers (copies in and out): used by the parity
 * test against the CPU conversion. */
int sk_cuda_bf16_to_f32_host(const uint16_t *src, float *dst, size_t n, char *err, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
