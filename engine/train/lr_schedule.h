/* Learning-rate schedules with linear warm-up, computed as transformers'
 * get_{linear,cosine,constant}_schedule_with_warmup do: the learning rate
 * of optimizer step s (0-based: the number of updates already applied) is
 * base_lr * sk_lr_multiplier(schedule, s). With warm-up the first step
 * therefore runs at lr 0, as under transformers' Trainer. */
#ifndef SK_LR_SCHEDULE_H
#define SK_LR_SCHEDULE_H

#include <stdint.h>

typedef enum { SK_LR_LINEAR = 0, SK_LR_COSINE = 1, SK_LR_CONSTANT = 2 } sk_lr_kind;

typedef struct {
	sk_lr_kind kind;
	int64_t warmup_steps;  /* multiplier s / warmup_steps while s < warmup_steps */
	int64_t total_steps;   /* linear and cosine reach 0 here (unused by constant) */
} sk_lr_schedule;

/* The multiplier in [0, 1] at step s (steps past total_steps: linear stays
 * at 0; cosine follows the curve back up, exactly as transformers does). */
double sk_lr_multiplier(const sk_lr_schedule *s, int64_t step);
/* base_lr * multiplier (LambdaLR's product). */
double sk_lr_at(const sk_lr_schedule *s, double base_lr, int64_t step);

const char *sk_lr_kind_name(sk_lr_kind k);              /* "linear", "cosine", "constant" */
int sk_lr_kind_parse(const char *name, sk_lr_kind *out); /* 0, or -1 + sk_error() */

#endif
