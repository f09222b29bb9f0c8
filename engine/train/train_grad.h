/* Training-side API of the model: trainable LoRA adapters, and one
 * forward + loss + backward pass over a micro-batch that accumulates the
 * LoRA gradients. The backward pass is written once in the model definition
 * over backward ops in the backend table, like the forward. */
#ifndef SK_TRAIN_GRAD_H
#define SK_TRAIN_GRAD_H

#include <stdint.h>

#include "engine/model/lora.h"
#include "engine/model/model.h"

struct sk_optim;
struct sk_optim_param;

/* Which modules get LoRA (bit i = sk_lora_module i). */
#define SK_LORA_MASK_ATTN ((1u << SK_LORA_Q) | (1u << SK_LORA_K) | (1u << SK_LORA_V) | (1u << SK_LORA_O))
#define SK_LORA_MASK_MLP ((1u << SK_LORA_GATE) | (1u << SK_LORA_UP) | (1u << SK_LORA_DOWN))
#define SK_LORA_MASK_ALL (SK_LORA_MASK_ATTN | SK_LORA_MASK_MLP)

/* A new trainable adapter for the model's language layers: A Kaiming-uniform
 * (PEFT's init: bound 1/sqrt(in)) from the seed, B zero; k/v of KV-shared
 * layers are not created (they would get no gradient). Gradient buffers are
 * allocated and zeroed. */
sk_lora *sk_lora_new_trainable(const sk_config *cfg, unsigned module_mask, int r, float alpha, int use_rslora,
                               uint64_t seed);
/* Gradient buffers of pair i (same shapes as A and B); NULL for an adapter
 * loaded for inference. */
float *sk_lora_grad_A(sk_lora *l, int i);
float *sk_lora_grad_B(sk_lora *l, int i);
sk_lora_pair *sk_lora_pair_at(sk_lora *l, int i, int *layer, sk_lora_module *module);
void sk_lora_zero_grad(sk_lora *l);

/* Pairs are numbered 0 .. sk_lora_pair_count() - 1 in (layer, module)
 * order. Allocates zeroed gradient buffers for an adapter loaded with
 * sk_lora_load (a no-op when it has them). 0 or -1. */
int sk_lora_make_trainable(sk_lora *l);
/* Gradient buffers of the pair at (layer, module), NULL when the adapter
 * has no such pair or no gradients. */
float *sk_lora_grad_of(sk_lora *l, int layer, sk_lora_module module, int is_b);
/* The tensor name the adapter file used for A (is_b 0) or B of the pair at
 * (layer, module); NULL for an adapter created in memory. */
const char *sk_lora_key_name(const sk_lora *l, int layer, sk_lora_module module, int is_b);

/* Training on a device backend (the GPU): sk_model_train_begin copies the
 * adapter's factors to the device, where sk_model_loss_grad then
 * accumulates its gradients; sk_model_train_grads_to_host adds them into
 * the adapter's host gradient buffers (and zeroes the device's) before the
 * optimizer, which runs on the host; sk_model_train_factors_to_device
 * copies the updated factors back. sk_model_train_end lets the adapter go.
 * On the CPU backend these do nothing. 0 or -1. */
int sk_model_train_begin(sk_model *m, const sk_lora *l);
/* 1 when m computes on a device backend (training's factors live there) */
int sk_model_train_on_device(const sk_model *m);
int sk_model_train_grads_to_host(sk_model *m);
int sk_model_train_factors_to_device(sk_model *m);
void sk_model_train_end(sk_model *m);

/* The optimizer where the adapter is (after sk_model_train_begin, with the
 * optimizer's states as they are now): 1 when the backend keeps it (the
 * GPU with AdamW8bit), 0 when the host steps it as above, -1 on error.
 * While the backend keeps it, sk_model_train_optim_step replaces the
 * gradients' download, sk_grad_clip_norm, sk_optim_step and the factors'
 * upload (norm: the gradient norm before clipping; not finite: no update,
 * the step not counted), and sk_model_train_optim_sync brings the states
 * and the factors back to the host (before writing a checkpoint). */
int sk_model_train_optim_begin(sk_model *m, struct sk_optim *o);
int sk_model_train_optim_step(sk_model *m, struct sk_optim *o, double lr, float max_norm, float *norm);
int sk_model_train_optim_sync(sk_model *m, struct sk_optim *o);
/* One optimizer step wherever the optimizer is (optim_on_device: what
 * sk_model_train_optim_begin gave): the gradient norm before clipping into
 * *norm, clipping to max_norm (<= 0: none), the update unless the norm is
 * not finite (then the step is not counted), the gradients zeroed and the
 * factors where the forward reads them. 0 or -1. */
int sk_model_train_optimizer_step(sk_model *m, struct sk_optim *o, int optim_on_device, sk_lora *l,
                                  const struct sk_optim_param *params, size_t n, double lr, float max_norm,
                                  float *norm);

/* One training sequence: target[i] != 0 means ids[i] is a label, predicted
 * from the logits at position i - 1 (target[0] is ignored). */
typedef struct {
	const int32_t *ids;
	const uint8_t *target;
	int n;
} sk_train_seq;

typedef struct {
	float lora_dropout;     /* dropout on the LoRA input, 0 = off */
	uint64_t dropout_seed;  /* seeds the dropout masks of this call */
	int grad_ckpt;          /* recompute each layer's activations in the backward pass */
	float grad_scale;       /* gradients accumulate d(sum of target losses)/dθ · grad_scale */
	int want_grad;          /* 0: loss only (evaluation) */
	int keep_bf16;          /* with grad_ckpt: the kept layer inputs in bf16 where the backend can
	                         * (half their memory; each layer's forward is computed again from the
	                         * rounded input, so its gradients carry bf16 noise) */
	int recompute_all;      /* with grad_ckpt: compute every product of a layer again; otherwise
	                         * the outputs of its down, o, LAuReL and per-layer-input products (and
	                         * attention's) are kept from the forward, in fp32, and those
	                         * products skipped (SK_KEEP_*; ~42 KB a token and layer for E4B) */
} sk_train_opts;

/* Forward over the sequences (no KV cache; each sequence causal from
 * position 0) with the attached adapter applied, cross-entropy over the
 * target tokens fused with a chunked LM head (no [T, vocab] buffer), and,
 * when want_grad, the backward pass accumulating into the adapter's
 * gradient buffers. loss_sum gets the sum of the target tokens' losses and
 * n_targets their count. */
int sk_model_loss_grad(sk_model *m, sk_lora *adapter, const sk_train_seq *seqs, int n_seqs,
                       const sk_train_opts *opts, double *loss_sum, int64_t *n_targets);

/* Where the host's time of sk_model_loss_grad went, summed over its calls
 * while SK_TRAIN_TIMING=1 is set (each call then ends with a wait for the
 * device): queueing the forward, waiting for the loss (the loss head reads
 * its sums back), queueing the backward, waiting for it. Queueing about as
 * long as the device takes means the host is the bound. */
typedef struct {
	long long calls;
	double fwd_queue_s, loss_wait_s, bwd_queue_s, bwd_wait_s;
} sk_train_timing;
/* 1 when SK_TRAIN_TIMING=1; *t gets the sums so far. */
int sk_train_timing_get(sk_train_timing *t);
/* The sums as one comment line for stderr (milliseconds a call), or ""
 * when timing is off or nothing was timed. */
void sk_train_timing_line(char *buf, size_t cap);

#endif
