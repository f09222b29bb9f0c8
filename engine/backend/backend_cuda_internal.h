/* The CUDA backend's state, shared by its host-side files (backend_cuda.c:
 * memory, weights, the forward ops; backend_cuda_train.c: the training
 * ops). Not a public header. */
#ifndef SK_BACKEND_CUDA_INTERNAL_H
#define SK_BACKEND_CUDA_INTERNAL_H

#include "engine/backend/backend_cuda.h"
#include "engine/model/lora_internal.h"

/* Every device and pinned allocation the backend made for weights, freed with it. */
typedef struct {
	void *p;
	int host;
} owned;

typedef struct {
	sk_cuda *c;
	owned *own;
	size_t n_own, cap_own;
	sk_cuda_weight **weights;
	size_t n_w, cap_w;
	/* the adapter set with set_adapter: its pairs and their device copies */
	const sk_lora *lora;
	sk_cuda_lora *dpairs;   /* parallel to lora->pairs */
	float *dfactors;        /* one allocation for every A and B */
	/* the adapter being trained (sk_model_train_begin): its factors' device
	 * copies and their gradients, accumulated on the device */
	const sk_lora *train;
	sk_cuda_lora *tpairs;   /* parallel to train->pairs */
	float **tgrad_a, **tgrad_b;
	float *tmem;            /* one allocation for every factor and gradient */
	size_t tmem_floats;
	/* row slices of weights (slice_rows), reused in turn: an op reads its
	 * weight record when it is called, never later */
	sk_cuda_weight slices[8];
	int next_slice;
} cuda_be;

/* sk_fail with the kernels' last message; returns -1. */
int sk_cuda_be_fail(sk_backend *be);

/* The device copy of a LoRA pair: of the adapter being trained when the
 * pair is one of its own, else of the adapter set for inference; NULL
 * (with *bad set) for a pair of neither. */
const sk_cuda_lora *sk_cuda_be_pair(sk_backend *be, const sk_lora_pair *lp, int *bad);
/* The device gradients (A's when is_b is 0) of a pair of the adapter being
 * trained; NULL for any other pair. */
float *sk_cuda_be_grad(sk_backend *be, const sk_lora_pair *lp, int is_b);

/* The training ops (backend_cuda_train.c), for the ops table. */
int sk_cuda_train_begin(sk_backend *be, const sk_lora *l);
int sk_cuda_train_upload(sk_backend *be);
int sk_cuda_train_download_grads(sk_backend *be);
void sk_cuda_train_free(sk_backend *be);

#endif
