/* Internals of the training pass shared by gemma_backward.c (the model's
 * forward with recorded activations and its backward) and loss.c (the
 * cross-entropy fused with the chunked LM head). Not a public header. */
#ifndef SK_TRAIN_INTERNAL_H
#define SK_TRAIN_INTERNAL_H

#include "engine/model/model_internal.h"

/* Workspace of the fused loss for n rows, carved from an arena. */
typedef struct {
	int64_t n, cw;        /* rows, vocabulary columns per chunk */
	float *z;             /* [n][cw] one chunk of logits, then of their gradient */
	float *mx, *se, *lab; /* online logsumexp state and the label's logit, per row */
	float *lse, *coef;
} sk_loss_ws;

void sk_loss_plan(sk_arena *a, int64_t n, int64_t vocab, sk_loss_ws *w);

/* Sum over rows of −log softmax(softcap(E hn_i))[labels[i]] with the tied
 * head E (m->embed) processed in vocabulary chunks (online logsumexp; no
 * [n, vocab] buffer). With dhn, a second pass writes dhn = d(sum ·
 * grad_scale)/dhn. labels must be in range. 0 or -1. */
int sk_loss_head(sk_model *m, const sk_backend_ops *ops, const float *hn, const int32_t *labels, int64_t n,
                 float grad_scale, float *dhn, double *loss_sum, const sk_loss_ws *w);

/* The backend's table with the training ops (filled in for the CPU
 * backend when its table lacks them); NULL + sk_error() when the backend
 * cannot train. */
const sk_backend_ops *sk_train_ops(sk_backend *be);

#endif
