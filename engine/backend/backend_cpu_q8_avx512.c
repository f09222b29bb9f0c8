/* The integer dot kernels for AVX-512 VNNI (vpdpbusd on 256-bit vectors,
 * AVX-512VL; AVX-512BW masks expand the fifth bits). */
#include "engine/backend/backend_cpu_q8.h"

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")
#define SK_Q8_DP 1
#define SK_Q8_BW 1
#define SK_Q8_FN sk_q8_kernel_avx512vnni
#include "engine/backend/backend_cpu_q8_kernels.h"
#else
int sk_q8_kernel_avx512vnni(sk_dtype t, sk_q8_kernel *k)
{
	(void)t, (void)k;
	return 0;
}
#endif
