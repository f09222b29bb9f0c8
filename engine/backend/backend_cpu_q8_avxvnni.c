/* The integer dot kernels for AVX-VNNI (VEX vpdpbusd, without AVX-512). */
#include "engine/backend/backend_cpu_q8.h"

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c,avxvnni")
#define SK_Q8_DP 2
#define SK_Q8_BW 0
#define SK_Q8_FN sk_q8_kernel_avxvnni
#include "engine/backend/backend_cpu_q8_kernels.h"
#else
int sk_q8_kernel_avxvnni(sk_dtype t, sk_q8_kernel *k)
{
	(void)t, (void)k;
	return 0;
}
#endif
