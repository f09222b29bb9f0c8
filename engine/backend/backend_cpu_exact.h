/* The CPU backend's exact ops table, for training: every linear in fp32
 * over the dequantized weights (no activation quantization), so the loss
 * is a smooth function of the adapter and matches the fp32 backward, and
 * attention and GELU as the backend computed them before its integer
 * kernels. SK_CPU_EXACT=1 makes a backend use it for inference too. */
#ifndef SK_BACKEND_CPU_EXACT_H
#define SK_BACKEND_CPU_EXACT_H

#include "engine/backend/backend.h"

const sk_backend_ops *sk_backend_cpu_exact_ops(void);
/* Whether ops is the CPU's inference table, whose linear quantizes the
 * activations (training swaps it for the exact one; any other table, a
 * test's variant of the exact one included, is used as it is). */
int sk_backend_cpu_quantizes(const sk_backend_ops *ops);

#endif
