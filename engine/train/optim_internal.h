/* The optimizer object, shared by optim.c and optim_state.c. */
#ifndef SK_OPTIM_INTERNAL_H
#define SK_OPTIM_INTERNAL_H

#include "engine/train/optim.h"

typedef struct {
	char *name;
	float *param, *grad;
	int64_t numel, nblocks;
	int eight_bit;
	uint8_t *state1, *state2;   /* eight_bit */
	float *absmax1, *absmax2;   /* eight_bit, [nblocks] */
	float *m, *v;               /* !eight_bit */
} sk_optim_slot;

struct sk_optim {
	sk_optim_config cfg;
	int64_t step;
	size_t n;
	sk_optim_slot *slots;
};

#endif
