/* The CUDA backend's entry points in a build without CUDA. */
#include "engine/backend/backend_cuda_internal.h"

#include "engine/error.h"
#include "engine/i18n.h"

sk_backend *sk_backend_cuda_new(int dev)
{
	(void)dev;
	sk_fail("%s", _("this build has no CUDA backend (configure --with-cuda)"));
	return NULL;
}

void sk_backend_cuda_free(sk_backend *be)
{
	(void)be;
}

sk_cuda *sk_backend_cuda_context(sk_backend *be)
{
	(void)be;
	return NULL;
}

/* tests reach the device gradients through this; there are none here */
float *sk_cuda_be_grad(sk_backend *be, const sk_lora_pair *lp, int is_b)
{
	(void)be, (void)lp, (void)is_b;
	return NULL;
}
