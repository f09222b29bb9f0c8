/* splitmix64: a tiny generator whose output is fixed by its definition, so
 * a seed gives the same stream on every platform and in every version. It
 * seeds the sampler's xoshiro state, orders the training data, initializes
 * LoRA factors and derives per-step seeds. */
#ifndef SK_SPLITMIX_H
#define SK_SPLITMIX_H

#include <stdint.h>

/* The next value of the stream whose state is *s (advancing it). */
static inline uint64_t sk_splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

#endif
