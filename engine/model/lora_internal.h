/* The LoRA adapter's internals, shared by lora.c (loading for inference)
 * and lora_train.c (trainable adapters, gradient buffers). Not a public
 * header. */
#ifndef SK_LORA_INTERNAL_H
#define SK_LORA_INTERNAL_H

#include "engine/model/lora.h"

struct sk_lora {
	int32_t num_layers;
	int32_t rank;
	int32_t npairs;
	int32_t ignored;
	sk_lora_pair *pairs; /* [num_layers][SK_LORA_NMOD]; A == NULL when absent */
	/* the file's tensor names per slot, [num_layers][SK_LORA_NMOD][2] (A, B);
	 * NULL for an adapter created in memory */
	char **names;
	/* gradient buffers per slot (same shapes as A and B); NULL until the
	 * adapter is made trainable */
	float **grad_a, **grad_b;
};

/* in / out features of a projection in a layer. */
void sk_lora_module_dims(const sk_config *c, int layer, sk_lora_module m, int64_t *in, int64_t *out);

#endif
