/* The CUDA backend's hold on the adapter being trained: device copies of
 * its factors (refreshed after each optimizer step, which stays on the
 * host with the CPU's 8-bit AdamW and its checkpoint format) and device
 * gradients, accumulated over the micro-steps and handed to the host before
 * the step. One allocation holds them all. */
#include "engine/backend/backend_cuda_internal.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"

static cuda_be *cb(sk_backend *be)
{
	return be->impl;
}

static void train_drop(cuda_be *b)
{
	sk_cuda_optim_drop(b); /* its tensors are this adapter's */
	if (b->tmem)
		sk_cuda_free(b->c, b->tmem);
	free(b->tpairs);
	free(b->tgrad_a);
	free(b->tgrad_b);
	b->tmem = NULL;
	b->tpairs = NULL;
	b->tgrad_a = b->tgrad_b = NULL;
	b->tmem_floats = 0;
	b->train = NULL;
}

static size_t slots_of(const sk_lora *l)
{
	return (size_t)l->num_layers * SK_LORA_NMOD;
}

int sk_cuda_train_upload(sk_backend *be)
{
	cuda_be *b = cb(be);
	const sk_lora *l = b->train;
	if (!l)
		return 0;
	for (size_t i = 0; i < slots_of(l); i++) {
		const sk_lora_pair *p = &l->pairs[i];
		if (!p->A)
			continue;
		size_t na = (size_t)p->r * (size_t)p->in, nb = (size_t)p->out * (size_t)p->r;
		if (sk_cuda_upload(b->c, (void *)b->tpairs[i].A, p->A, na * sizeof(float)) != 0 ||
		    sk_cuda_upload(b->c, (void *)b->tpairs[i].B, p->B, nb * sizeof(float)) != 0)
			return sk_cuda_be_fail(be);
		b->tpairs[i].scale = p->scale;
	}
	return 0;
}

int sk_cuda_train_begin(sk_backend *be, const sk_lora *l)
{
	cuda_be *b = cb(be);
	sk_cuda_record_drop(b->c); /* recordings name the old factors */
	train_drop(b);
	if (!l)
		return 0;
	size_t slots = slots_of(l), total = 0;
	for (size_t i = 0; i < slots; i++)
		if (l->pairs[i].A) /* factors and their gradients */
			total += 2 * (size_t)l->pairs[i].r * (size_t)(l->pairs[i].in + l->pairs[i].out);
	b->tpairs = calloc(slots ? slots : 1, sizeof *b->tpairs);
	b->tgrad_a = calloc(slots ? slots : 1, sizeof *b->tgrad_a);
	b->tgrad_b = calloc(slots ? slots : 1, sizeof *b->tgrad_b);
	if (!b->tpairs || !b->tgrad_a || !b->tgrad_b) {
		train_drop(b);
		return sk_fail("%s", _("out of memory"));
	}
	if (total && !(b->tmem = sk_cuda_alloc(b->c, total * sizeof(float), _("the adapter being trained")))) {
		int rc = sk_cuda_be_fail(be);
		train_drop(b);
		return rc;
	}
	b->tmem_floats = total;
	float *d = b->tmem;
	for (size_t i = 0; i < slots; i++) {
		const sk_lora_pair *p = &l->pairs[i];
		if (!p->A)
			continue;
		size_t na = (size_t)p->r * (size_t)p->in, nb = (size_t)p->out * (size_t)p->r;
		b->tpairs[i] = (sk_cuda_lora){ d, d + na, p->r, p->in, p->out, p->scale };
		b->tgrad_a[i] = d + na + nb;
		b->tgrad_b[i] = d + 2 * na + nb;
		d += 2 * (na + nb);
	}
	b->train = l;
	if (sk_cuda_train_upload(be) != 0) {
		train_drop(b);
		return -1;
	}
	return 0;
}

int sk_cuda_train_download_grads(sk_backend *be)
{
	cuda_be *b = cb(be);
	const sk_lora *l = b->train;
	if (!l)
		return 0;
	if (!l->grad_a || !l->grad_b)
		return sk_fail("%s", _("training: the adapter has no gradient buffers (not trainable)"));
	float *tmp = NULL;
	size_t cap = 0;
	for (size_t i = 0; i < slots_of(l); i++) {
		const sk_lora_pair *p = &l->pairs[i];
		if (!p->A)
			continue;
		size_t n[2] = { (size_t)p->r * (size_t)p->in, (size_t)p->out * (size_t)p->r };
		float *dev[2] = { b->tgrad_a[i], b->tgrad_b[i] }, *host[2] = { l->grad_a[i], l->grad_b[i] };
		for (int k = 0; k < 2; k++) {
			if (n[k] > cap) {
				float *t = realloc(tmp, n[k] * sizeof *t);
				if (!t) {
					free(tmp);
					return sk_fail("%s", _("out of memory"));
				}
				tmp = t;
				cap = n[k];
			}
			if (sk_cuda_download(b->c, tmp, dev[k], n[k] * sizeof(float)) != 0) {
				free(tmp);
				return sk_cuda_be_fail(be);
			}
			for (size_t j = 0; j < n[k]; j++)
				host[k][j] += tmp[j];
		}
	}
	free(tmp);
	/* a pair's gradients of A and B lie together after its factors */
	for (size_t i = 0; i < slots_of(l); i++)
		if (l->pairs[i].A) {
			const sk_lora_pair *p = &l->pairs[i];
			sk_cuda_zero(b->c, b->tgrad_a[i], (int64_t)p->r * p->in + (int64_t)p->out * p->r);
		}
	return sk_cuda_check(b->c) ? sk_cuda_be_fail(be) : 0;
}

void sk_cuda_train_free(sk_backend *be)
{
	train_drop(cb(be));
}
