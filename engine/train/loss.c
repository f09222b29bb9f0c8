/* Cross-entropy fused with the tied LM head (gemma3n-architecture.md
 * §6.2): the vocabulary is processed in chunks of columns, each chunk's
 * logits computed, softcapped and folded into a per-row online logsumexp;
 * for the gradient a second pass recomputes each chunk, turns it into
 * (softmax − onehot) · softcap' and accumulates dh = dz · E_chunk. Only
 * one [rows, chunk] buffer ever exists. A backend may take either pass
 * whole (head_lse, head_grad: the GPU's converts hn to bf16 once a pass
 * and writes each chunk's gradient straight into its product's bf16
 * operand); the loop below is the reference and the fallback. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend/backend_cpu_backward.h"
#include "engine/backend/backend_cpu_exact.h"
#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/train/train_internal.h"

#define CHUNK_FLOATS (1 << 22) /* 16 MiB of logits per chunk */

void sk_loss_plan(sk_arena *a, int64_t n, int64_t vocab, sk_loss_ws *w)
{
	memset(w, 0, sizeof *w);
	int64_t rows = n > 0 ? n : 1;
	/* a multiple of 256 columns: a chunk's rows then keep the 16-byte
	 * alignment the GPU's bf16 products need (any other width sent the
	 * CUDA backward of the head through its general kernel: 39 % of a
	 * step at 2 x 320 tokens, docs/perf.md run 8) */
	int64_t cw = CHUNK_FLOATS / rows / 256 * 256;
	if (cw < 256)
		cw = 256;
	if (cw > vocab)
		cw = vocab;
	w->n = n;
	w->cw = cw;
	w->z = sk_arena_floats(a, (size_t)(rows * cw));
	w->mx = sk_arena_floats(a, (size_t)rows);
	w->se = sk_arena_floats(a, (size_t)rows);
	w->lab = sk_arena_floats(a, (size_t)rows);
	w->lse = sk_arena_floats(a, (size_t)rows);
	w->coef = sk_arena_floats(a, (size_t)rows);
}

/* Rows [c0, c0 + cw) of the embedding as a matrix of their own. */
static int head_chunk(const sk_model *m, const sk_backend_ops *ops, int64_t c0, int64_t cw, sk_tensor *t)
{
	if (ops->slice_rows)
		return ops->slice_rows(m->be, &m->embed, c0, cw, t);
	*t = m->embed;
	t->shape[0] = cw;
	t->data = (const char *)m->embed.data + sk_tensor_row_bytes(&m->embed) * c0;
	return 0;
}

int sk_loss_head(sk_model *m, const sk_backend_ops *ops, const float *hn, const int32_t *labels, int64_t n,
                 float grad_scale, float *dhn, double *loss_sum, const sk_loss_ws *w)
{
	*loss_sum = 0;
	if (n <= 0)
		return 0;
	int64_t V = m->vocab, H = m->cfg.hidden_size;
	float cap = m->cfg.final_logit_softcap > 0 ? m->cfg.final_logit_softcap : 0.0f;
	if (m->embed.nf4 || (m->embed.device != SK_DEVICE_CUDA && sk_tensor_row_bytes(&m->embed) < 0))
		return sk_fail("%s", _("loss: the embedding's type cannot be split into row chunks"));
	/* the per-row state lives where the backend computes; the host sets it
	 * up and finishes it (n values each: small next to the chunks) */
	float *h = malloc((size_t)(3 * n) * sizeof *h);
	if (!h)
		return sk_fail("%s", _("out of memory"));
	float *hmx = h, *hse = h + n, *hlab = h + 2 * n;
	int rc = -1;
	for (int64_t i = 0; i < n; i++) {
		hmx[i] = -INFINITY;
		hse[i] = 0;
		hlab[i] = 0;
	}
	if (ops->upload(m->be, w->mx, hmx, (size_t)n * sizeof(float)) != 0 ||
	    ops->upload(m->be, w->se, hse, (size_t)n * sizeof(float)) != 0 ||
	    ops->upload(m->be, w->lab, hlab, (size_t)n * sizeof(float)) != 0)
		goto out;
	sk_tensor t;
	int done = ops->head_lse ? ops->head_lse(m->be, &m->embed, V, hn, n, w->cw, cap, labels, w->z, w->mx, w->se, w->lab)
	                         : 0;
	if (done < 0)
		goto out;
	for (int64_t c0 = 0; !done && c0 < V; c0 += w->cw) {
		int64_t cw = V - c0 < w->cw ? V - c0 : w->cw;
		if (head_chunk(m, ops, c0, cw, &t) != 0 || ops->linear(m->be, &t, hn, n, w->z, NULL, NULL) != 0)
			goto out;
		ops->xent_chunk(m->be, w->z, n, cw, c0, cap, labels, w->mx, w->se, w->lab);
	}
	if (ops->download(m->be, hmx, w->mx, (size_t)n * sizeof(float)) != 0 ||
	    ops->download(m->be, hse, w->se, (size_t)n * sizeof(float)) != 0 ||
	    ops->download(m->be, hlab, w->lab, (size_t)n * sizeof(float)) != 0)
		goto out;
	double sum = 0;
	for (int64_t i = 0; i < n; i++) {
		double lse = (double)hmx[i] + log((double)hse[i]);
		sum += lse - (double)hlab[i];
		hmx[i] = (float)lse;     /* the logsumexp, for the gradient pass */
		hse[i] = grad_scale;     /* each row's coefficient */
	}
	*loss_sum = sum;
	if (!isfinite(sum)) {
		sk_fail("%s", _("loss: the loss is not finite"));
		goto out;
	}
	if (!dhn) {
		rc = 0;
		goto out;
	}
	if (ops->upload(m->be, w->lse, hmx, (size_t)n * sizeof(float)) != 0 ||
	    ops->upload(m->be, w->coef, hse, (size_t)n * sizeof(float)) != 0)
		goto out;
	done = ops->head_grad ? ops->head_grad(m->be, &m->embed, V, hn, n, w->cw, cap, labels, w->lse, w->coef, w->z, dhn)
	                      : 0;
	if (done < 0)
		goto out;
	if (!done)
		ops->zero(m->be, dhn, n * H);
	for (int64_t c0 = 0; !done && c0 < V; c0 += w->cw) {
		int64_t cw = V - c0 < w->cw ? V - c0 : w->cw;
		if (head_chunk(m, ops, c0, cw, &t) != 0 || ops->linear(m->be, &t, hn, n, w->z, NULL, NULL) != 0)
			goto out;
		ops->xent_chunk_grad(m->be, w->z, n, cw, c0, cap, labels, w->lse, w->coef);
		if (ops->linear_bwd(m->be, &t, w->z, n, dhn, 1) != 0)
			goto out;
	}
	rc = 0;
out:
	free(h);
	return rc;
}

const sk_backend_ops *sk_train_ops(sk_backend *be)
{
	/* the CPU's inference table quantizes activations; training runs in fp32 */
	if (be->ops->linear_bwd)
		return be->device == SK_DEVICE_CPU && sk_backend_cpu_quantizes(be->ops) ? sk_backend_cpu_exact_ops() : be->ops;
	sk_fail(_("the %s backend cannot train"), be->ops->name);
	return NULL;
}
