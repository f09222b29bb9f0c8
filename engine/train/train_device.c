/* The adapter being trained on a device backend (train_grad.h): its
 * factors copied where the backend computes, its gradients accumulated
 * there and handed to the host before each optimizer step. On the CPU
 * backend every call is a no-op: the host buffers are used directly. */
#include "engine/model/model_internal.h"
#include "engine/train/optim.h"
#include "engine/train/train_grad.h"

#include <math.h>

int sk_model_train_begin(sk_model *m, const sk_lora *l)
{
	return m->be->ops->train_begin ? m->be->ops->train_begin(m->be, l) : 0;
}

int sk_model_train_on_device(const sk_model *m)
{
	return m->be->ops->train_begin != NULL;
}

int sk_model_train_grads_to_host(sk_model *m)
{
	return m->be->ops->train_download_grads ? m->be->ops->train_download_grads(m->be) : 0;
}

int sk_model_train_factors_to_device(sk_model *m)
{
	return m->be->ops->train_upload ? m->be->ops->train_upload(m->be) : 0;
}

void sk_model_train_end(sk_model *m)
{
	if (m && m->be->ops->train_begin)
		m->be->ops->train_begin(m->be, NULL);
}

int sk_model_train_optim_begin(sk_model *m, struct sk_optim *o)
{
	return m->be->ops->train_optim_begin ? m->be->ops->train_optim_begin(m->be, o) : 0;
}

int sk_model_train_optim_step(sk_model *m, struct sk_optim *o, double lr, float max_norm, float *norm)
{
	return m->be->ops->train_optim_step(m->be, o, lr, max_norm, norm);
}

int sk_model_train_optim_sync(sk_model *m, struct sk_optim *o)
{
	return m->be->ops->train_optim_sync(m->be, o);
}

int sk_model_train_optimizer_step(sk_model *m, struct sk_optim *o, int optim_on_device, sk_lora *l,
                                  const sk_optim_param *params, size_t n, double lr, float max_norm, float *norm)
{
	if (optim_on_device) {
		if (sk_model_train_optim_step(m, o, lr, max_norm, norm))
			return -1;
	} else {
		if (sk_model_train_grads_to_host(m))
			return -1;
		*norm = sk_grad_clip_norm(params, n, max_norm);
		if (isfinite(*norm) && sk_optim_step(o, lr))
			return -1;
	}
	sk_lora_zero_grad(l);
	return optim_on_device ? 0 : sk_model_train_factors_to_device(m);
}
