/* The CUDA backend (backend_cuda.c over kernels/kernels.h; backend_cuda_none.c
 * in a build without CUDA). Not a public header: sk_backend_new picks it. */
#ifndef SK_BACKEND_CUDA_H
#define SK_BACKEND_CUDA_H

#include "engine/backend/backend.h"
#include "kernels/kernels.h"

/* The backend on CUDA device dev; NULL + sk_error() when it cannot start. */
sk_backend *sk_backend_cuda_new(int dev);
void sk_backend_cuda_free(sk_backend *be);
/* The kernels' context of a CUDA backend (NULL for another backend): for
 * tests and benchmarks that call kernels directly. */
sk_cuda *sk_backend_cuda_context(sk_backend *be);

#endif
