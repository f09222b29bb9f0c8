#include "engine/backend/backend_info.h"

#include <stdio.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "kernels/kernels.h"

void sk_backend_probe(sk_backend_info *bi)
{
	memset(bi, 0, sizeof *bi);
	bi->cuda_built = sk_cuda_built();
	bi->cuda_devices = sk_cuda_probe(bi->cuda_reason, sizeof bi->cuda_reason);
	if (bi->cuda_devices > 0)
		sk_cuda_describe(0, bi->cuda_desc, sizeof bi->cuda_desc);
}

int sk_backend_resolve(sk_device want, const sk_backend_info *bi, sk_device *out)
{
	switch (want) {
	case SK_DEVICE_CPU:
		*out = SK_DEVICE_CPU;
		return 0;
	case SK_DEVICE_CUDA:
		if (bi->cuda_devices <= 0)
			return sk_fail(_("the CUDA backend is unavailable: %s"), bi->cuda_reason);
		*out = SK_DEVICE_CUDA;
		return 0;
	case SK_DEVICE_AUTO:
	default:
		*out = bi->cuda_devices > 0 ? SK_DEVICE_CUDA : SK_DEVICE_CPU;
		return 0;
	}
}

const char *sk_device_name(sk_device d)
{
	switch (d) {
	case SK_DEVICE_CPU: return "cpu";
	case SK_DEVICE_CUDA: return "cuda";
	default: return "auto";
	}
}
