/* The CUDA backend's hold on the optimizer of the adapter being trained
 * (backend.h's train_optim_*): AdamW8bit's states on the device beside the
 * factors and their gradients, so that an optimizer step is two launches
 * (the gradient norm, the update) instead of every gradient to the host
 * and every factor back. The states keep the host optimizer's layout and
 * come back to it for checkpoints, which either backend resumes. The fp32
 * AdamW (`--optim adamw`) stays on the host. */
#include "engine/backend/backend_cuda_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/format/nf4.h"
#include "engine/i18n.h"
#include "engine/train/optim.h"

#define OB 256 /* elements a state block (SK_OPTIM_BLOCK) */

static cuda_be *cb(sk_backend *be)
{
	return be->impl;
}

void sk_cuda_optim_drop(cuda_be *b)
{
	if (b->omem)
		sk_cuda_free(b->c, b->omem);
	free(b->otab_host);
	free(b->osums_host);
	b->omem = NULL;
	b->otab_host = NULL;
	b->osums_host = NULL;
	b->otab = NULL;
	b->opt = NULL;
	b->onum = 0;
	b->oblocks = 0;
}

/* The device factor and gradient of the optimizer's parameter whose host
 * array is param: one of the trained adapter's A or B. */
static int device_of(const cuda_be *b, const float *param, float **p, float **g)
{
	const sk_lora *l = b->train;
	size_t slots = (size_t)l->num_layers * SK_LORA_NMOD;
	for (size_t i = 0; i < slots; i++) {
		if (!l->pairs[i].A)
			continue;
		if (l->pairs[i].A == param) {
			*p = (float *)b->tpairs[i].A, *g = b->tgrad_a[i];
			return 0;
		}
		if (l->pairs[i].B == param) {
			*p = (float *)b->tpairs[i].B, *g = b->tgrad_b[i];
			return 0;
		}
	}
	return -1;
}

static size_t up16(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

int sk_cuda_train_optim_begin(sk_backend *be, sk_optim *o)
{
	cuda_be *b = cb(be);
	sk_cuda_optim_drop(b);
	if (!b->train || sk_optim_get_config(o)->kind != SK_OPTIM_ADAMW8BIT)
		return 0;
	size_t n = sk_optim_param_count(o), bytes = 0;
	sk_cuda_optim_tensor *tab = calloc(n ? n : 1, sizeof *tab);
	double *sums = calloc(n ? n : 1, sizeof *sums);
	if (!tab || !sums) {
		free(tab);
		free(sums);
		return sk_fail("%s", _("out of memory"));
	}
	int64_t blocks = 0;
	for (size_t i = 0; i < n; i++) {
		sk_optim_state_buf s;
		if (sk_optim_state_buffers(o, i, &s) || device_of(b, s.param, &tab[i].p, &tab[i].g)) {
			free(tab);
			free(sums);
			return 0; /* not all of it is the trained adapter: the host steps it */
		}
		tab[i].n = s.numel;
		tab[i].blk0 = blocks;
		tab[i].eight_bit = s.eight_bit;
		blocks += (s.numel + OB - 1) / OB;
		bytes += s.eight_bit ? up16(2 * (size_t)s.numel) + up16(2 * sizeof(float) * (size_t)s.nblocks)
		                     : up16(2 * sizeof(float) * (size_t)s.numel);
	}
	size_t maps = 512 * sizeof(float), table = up16(n * sizeof *tab), sumb = up16(n * sizeof(double));
	char *mem = sk_cuda_alloc(b->c, bytes + maps + table + sumb, _("the optimizer state"));
	if (!mem) {
		free(tab);
		free(sums);
		return sk_cuda_be_fail(be);
	}
	b->omem = mem;
	b->otab_host = tab;
	b->osums_host = sums;
	b->onum = (int)n;
	b->oblocks = blocks;
	b->omaps = (float *)mem;
	b->osums = (double *)(mem + maps);
	b->otab = (sk_cuda_optim_tensor *)(mem + maps + sumb);
	char *d = mem + maps + sumb + table;
	for (size_t i = 0; i < n; i++) {
		sk_optim_state_buf s;
		sk_optim_state_buffers(o, i, &s);
		if (s.eight_bit) {
			tab[i].state1 = (uint8_t *)d;
			tab[i].state2 = (uint8_t *)d + s.numel;
			d += up16(2 * (size_t)s.numel);
			tab[i].absmax1 = (float *)d;
			tab[i].absmax2 = (float *)d + s.nblocks;
			d += up16(2 * sizeof(float) * (size_t)s.nblocks);
		} else {
			tab[i].m = (float *)d;
			tab[i].v = (float *)d + s.numel;
			d += up16(2 * sizeof(float) * (size_t)s.numel);
		}
	}
	int rc = sk_cuda_upload(b->c, b->omaps, sk_dynamic_map_signed, 256 * sizeof(float)) ||
	         sk_cuda_upload(b->c, b->omaps + 256, sk_dynamic_map_unsigned, 256 * sizeof(float)) ||
	         sk_cuda_upload(b->c, b->otab, tab, n * sizeof *tab);
	for (size_t i = 0; i < n && !rc; i++) {
		sk_optim_state_buf s;
		sk_optim_state_buffers(o, i, &s);
		if (s.eight_bit)
			rc = sk_cuda_upload(b->c, tab[i].state1, s.state1, (size_t)s.numel) ||
			     sk_cuda_upload(b->c, tab[i].state2, s.state2, (size_t)s.numel) ||
			     sk_cuda_upload(b->c, tab[i].absmax1, s.absmax1, sizeof(float) * (size_t)s.nblocks) ||
			     sk_cuda_upload(b->c, tab[i].absmax2, s.absmax2, sizeof(float) * (size_t)s.nblocks);
		else
			rc = sk_cuda_upload(b->c, tab[i].m, s.m, sizeof(float) * (size_t)s.numel) ||
			     sk_cuda_upload(b->c, tab[i].v, s.v, sizeof(float) * (size_t)s.numel);
	}
	if (rc) {
		rc = sk_cuda_be_fail(be);
		sk_cuda_optim_drop(b);
		return rc;
	}
	b->opt = o;
	return 1;
}

/* torch's clip_grad_norm_ as sk_grad_clip_norm computes it from per-tensor
 * sums of squares (in double; only their order differs from the host's). */
static float norm_of(const double *sums, int n)
{
	double total = 0.0;
	for (int i = 0; i < n; i++) {
		float norm = (float)sqrt(sums[i]);
		total += (double)norm * norm;
	}
	return (float)sqrt(total);
}

int sk_cuda_train_optim_step(sk_backend *be, sk_optim *o, double lr, float max_norm, float *norm)
{
	cuda_be *b = cb(be);
	if (b->opt != o)
		return sk_fail("%s", _("optimizer: the device does not hold this optimizer's state"));
	if (sk_cuda_grad_sq(b->c, b->otab, b->onum, b->oblocks, b->osums) ||
	    sk_cuda_download(b->c, b->osums_host, b->osums, (size_t)b->onum * sizeof(double)))
		return sk_cuda_be_fail(be);
	*norm = norm_of(b->osums_host, b->onum);
	sk_cuda_adam s;
	memset(&s, 0, sizeof s);
	int apply = isfinite(*norm);
	float coef = 1.0f;
	if (apply) {
		sk_adam_args a;
		if (sk_optim_begin_step(o, lr, &a))
			return -1;
		sk_adamw8bit_scalars k;
		sk_adamw8bit_scalars_of(&a, &k);
		s = (sk_cuda_adam){ k.beta1, k.beta2, k.ob1, k.ob2, k.eps, k.weight_decay, k.gnorm_scale, k.c2,
			            k.step_size, k.decay };
		if (max_norm > 0.0f) {
			float c = max_norm / (*norm + 1e-6f);
			if (c < 1.0f)
				coef = c;
		}
	}
	if (sk_cuda_adamw8bit(b->c, b->otab, b->onum, b->oblocks, b->omaps, &s, coef, apply))
		return sk_cuda_be_fail(be);
	return 0;
}

int sk_cuda_train_optim_sync(sk_backend *be, sk_optim *o)
{
	cuda_be *b = cb(be);
	if (b->opt != o)
		return sk_fail("%s", _("optimizer: the device does not hold this optimizer's state"));
	int rc = 0;
	for (int i = 0; i < b->onum && !rc; i++) {
		sk_optim_state_buf s;
		const sk_cuda_optim_tensor *t = &b->otab_host[i];
		if (sk_optim_state_buffers(o, (size_t)i, &s))
			return -1;
		rc = sk_cuda_download(b->c, s.param, t->p, sizeof(float) * (size_t)s.numel);
		if (!rc && s.eight_bit)
			rc = sk_cuda_download(b->c, s.state1, t->state1, (size_t)s.numel) ||
			     sk_cuda_download(b->c, s.state2, t->state2, (size_t)s.numel) ||
			     sk_cuda_download(b->c, s.absmax1, t->absmax1, sizeof(float) * (size_t)s.nblocks) ||
			     sk_cuda_download(b->c, s.absmax2, t->absmax2, sizeof(float) * (size_t)s.nblocks);
		else if (!rc)
			rc = sk_cuda_download(b->c, s.m, t->m, sizeof(float) * (size_t)s.numel) ||
			     sk_cuda_download(b->c, s.v, t->v, sizeof(float) * (size_t)s.numel);
	}
	return rc ? sk_cuda_be_fail(be) : 0;
}
