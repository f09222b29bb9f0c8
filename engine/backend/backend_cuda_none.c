/* The CUDA backend's entry points in a build without CUDA. */
#include "engine/backend/backend_cuda.h"

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
