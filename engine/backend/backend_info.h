/* Which compute backend a command runs on: --device cpu|cuda|auto resolved
 * against what this binary was built with and what the machine has. */
#ifndef SK_BACKEND_INFO_H
#define SK_BACKEND_INFO_H

typedef enum { SK_DEVICE_AUTO, SK_DEVICE_CPU, SK_DEVICE_CUDA } sk_device;

typedef struct {
	int cuda_built;       /* compiled with the CUDA backend */
	int cuda_devices;     /* usable devices now */
	char cuda_desc[256];  /* device 0, when there is one */
	char cuda_reason[256];/* why CUDA is unavailable, when it is */
} sk_backend_info;

void sk_backend_probe(sk_backend_info *bi);
/* Picks the backend for a request: auto → CUDA when usable, else CPU;
 * cuda when unavailable → -1 with the reason in sk_error(). */
int sk_backend_resolve(sk_device want, const sk_backend_info *bi, sk_device *out);
const char *sk_device_name(sk_device d);

#endif
