/* Which consecutive micro-batches of an optimizer step share one forward and
 * backward pass (--merge-tokens). */
#ifndef SK_TRAIN_PASS_PLAN_H
#define SK_TRAIN_PASS_PLAN_H

#include <stddef.h>

/* The n micro-batches of tokens[i] tokens in as few passes of at most budget
 * tokens as they fit (a micro-batch over the budget alone; budget 0: each
 * alone), the largest pass as small as that number allows. group[g] gets the
 * micro-batches of pass g (group holds n). Returns the number of passes. */
int sk_pass_plan(const size_t *tokens, int n, size_t budget, int *group);

#endif
