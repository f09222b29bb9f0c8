/* Optimizers for the LoRA trainer: AdamW with 8-bit blockwise states
 * (bitsandbytes AdamW8bit, formats.md §2) or with fp32 states
 * (torch.optim.AdamW), gradient clipping, and state checkpoints.
 *
 * The two kinds differ in more than state precision:
 *   - adamw8bit follows bitsandbytes: the Adam step first, then decoupled
 *     weight decay p *= 1 - lr*wd applied to the updated value; epsilon is
 *     added as eps * sqrt(1 - beta2^t) to the uncorrected sqrt(v).
 *     Tensors with fewer than min_8bit_size elements keep fp32 states
 *     (bitsandbytes' 32-bit fallback) but the same update order.
 *   - adamw follows torch.optim.AdamW: p *= 1 - lr*wd first, then
 *     p -= lr * m_hat / (sqrt(v_hat) + eps).
 * Both orders are the same to first order in lr; they are not bit-equal.
 *
 * Parameters and gradients are fp32 arrays owned by the caller; the
 * optimizer keeps the pointers given to sk_optim_new and updates the
 * parameters in place from the gradients at each sk_optim_step. */
#ifndef SK_OPTIM_H
#define SK_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "engine/format/safetensors.h"

typedef enum { SK_OPTIM_ADAMW8BIT = 0, SK_OPTIM_ADAMW = 1 } sk_optim_kind;

#define SK_OPTIM_BLOCK 256          /* elements per absmax block (bitsandbytes >= 0.44) */
#define SK_OPTIM_MIN_8BIT_SIZE 4096 /* smaller tensors keep fp32 states */

/* Hyperparameters are doubles like torch's Python floats; the 8-bit kind
 * rounds them (and lr) to float32 as bitsandbytes hands them to its
 * kernels. */
typedef struct {
	sk_optim_kind kind;
	double beta1, beta2, eps, weight_decay;
	int64_t min_8bit_size;
} sk_optim_config;

/* adamw8bit, betas (0.9, 0.999), eps 1e-8, weight decay 0.01, min 4096. */
void sk_optim_config_default(sk_optim_config *c);
const char *sk_optim_kind_name(sk_optim_kind k);         /* "adamw8bit", "adamw" */
int sk_optim_kind_parse(const char *name, sk_optim_kind *out); /* 0 or -1 */

typedef struct sk_optim_param {
	const char *name;  /* unique; names its tensors in the state file (copied) */
	float *param;      /* [numel], updated in place */
	float *grad;       /* [numel], read by sk_optim_step, scaled by sk_grad_clip_norm */
	int64_t numel;
} sk_optim_param;

typedef struct sk_optim sk_optim;
struct sk_adam_args;

/* States start at zero (step 0). NULL + sk_error() on a bad config, a
 * duplicate or empty name, a missing array, or out of memory. */
sk_optim *sk_optim_new(const sk_optim_config *cfg, const sk_optim_param *params, size_t n);
void sk_optim_free(sk_optim *o);

/* One update of every parameter with learning rate lr (the schedule's
 * value for this step). A gradient element that is NaN or infinite resets
 * that element's m and v to 0 and leaves its parameter untouched (weight
 * decay included), as bitsandbytes' 8-bit kernel does; the same rule is
 * applied on the fp32 paths so one bad element cannot poison a parameter.
 * Returns 0, or -1 for a negative or non-finite lr. */
int sk_optim_step(sk_optim *o, double lr);
/* Updates applied so far (bitsandbytes' state["step"]). */
int64_t sk_optim_steps_done(const sk_optim *o);
const sk_optim_config *sk_optim_get_config(const sk_optim *o);

/* Bytes of optimizer state (moments and block maxima; the shared 2 KiB
 * of quantization maps are static). 8-bit: 2 + 8/256 bytes per element;
 * fp32: 8. */
uint64_t sk_optim_state_bytes(const sk_optim *o);

/* Read access to the state of parameter i (tests, diagnostics). */
typedef struct {
	int eight_bit;
	int64_t numel, nblocks;
	const uint8_t *state1, *state2;   /* 8-bit codes into the signed / unsigned maps */
	const float *absmax1, *absmax2;   /* [nblocks] */
	const float *m, *v;               /* fp32 states when !eight_bit */
} sk_optim_state_view;
int sk_optim_state(const sk_optim *o, size_t i, sk_optim_state_view *out);

/* For an optimizer whose arithmetic runs elsewhere (a device backend that
 * holds the states, see backend.h's train_optim_*): the mutable state of
 * parameter i, to copy it there and back. */
typedef struct {
	int eight_bit;
	int64_t numel, nblocks;
	float *param, *grad;
	uint8_t *state1, *state2;
	float *absmax1, *absmax2;
	float *m, *v;
} sk_optim_state_buf;
int sk_optim_state_buffers(sk_optim *o, size_t i, sk_optim_state_buf *out);
size_t sk_optim_param_count(const sk_optim *o);
/* What sk_optim_step does before its updates: checks lr, counts the step,
 * and fills the update's arguments. 0 or -1 (bad lr). */
int sk_optim_begin_step(sk_optim *o, double lr, struct sk_adam_args *a);

/* Checkpoint of the whole state as a safetensors file (written atomically):
 * "<name>.state1" / "<name>.state2" (U8 codes, or F32 moments for fp32
 * states), "<name>.absmax1" / "<name>.absmax2" (F32, 8-bit only),
 * "optimizer.step" (I64 [1]) and "optimizer.config" (F64 [4]: beta1,
 * beta2, eps, weight decay). Loading restores all of it into an optimizer
 * built over the same parameter list (names, sizes and kind must match;
 * anything else is an error and leaves o unchanged), so a resumed run
 * continues bit-identically. Hyperparameters come from the file, as with
 * torch's load_state_dict. */
int sk_optim_save(const sk_optim *o, const char *path);
int sk_optim_load(sk_optim *o, const char *path);
/* The same from a file already open (path names it in errors). */
int sk_optim_load_st(sk_optim *o, const sk_st_file *f, const char *path);

/* torch.nn.utils.clip_grad_norm_ over the gradients of params: the global
 * L2 norm of all gradient elements; when max_norm > 0 and
 * max_norm / (norm + 1e-6) < 1 every gradient is scaled by that factor.
 * Returns the norm before clipping. A non-finite norm leaves the gradients
 * untouched (torch would scale them to NaN); the caller should skip the
 * step. max_norm <= 0 only measures. */
float sk_grad_clip_norm(const sk_optim_param *params, size_t n, float max_norm);

/* The update kernels, one tensor each (exposed for tests). step is the
 * 1-based count including this update. */
typedef struct sk_adam_args {
	double lr, beta1, beta2, eps, weight_decay;
	double gnorm_scale;  /* gradient multiplier; 1 unless percentile clipping */
	int64_t step;
} sk_adam_args;

/* The float32 scalars the 8-bit kernel computes once per step from its
 * arguments (bias corrections with bitsandbytes' powf, step size, decay),
 * for a device that runs the same update. */
typedef struct {
	float beta1, beta2, ob1, ob2, eps, weight_decay, gnorm_scale, c2, step_size, decay;
} sk_adamw8bit_scalars;
void sk_adamw8bit_scalars_of(const sk_adam_args *a, sk_adamw8bit_scalars *out);

/* bitsandbytes kOptimizerStatic8bit2StateBlockwise (Adam): codes and
 * absmax of ceil(n / 256) blocks updated in place. */
void sk_adamw8bit_update(float *p, const float *g, uint8_t *state1, uint8_t *state2,
			 float *absmax1, float *absmax2, int64_t n, const sk_adam_args *a);
/* bitsandbytes kOptimizer32bit2State (Adam), the fallback for small tensors. */
void sk_adamw8bit_update_fp32(float *p, const float *g, float *m, float *v, int64_t n,
			      const sk_adam_args *a);
/* torch.optim.AdamW (single-tensor semantics, fp32 states). */
void sk_adamw_update(float *p, const float *g, float *m, float *v, int64_t n, const sk_adam_args *a);

#endif
