/* sk_tensor helpers and the bump arena behind activations and workspace. */
#include "engine/tensor.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"

int64_t sk_tensor_rows(const sk_tensor *t)
{
	return t->ndim >= 1 ? t->shape[0] : 0;
}

int64_t sk_tensor_cols(const sk_tensor *t)
{
	return t->ndim >= 1 ? t->shape[t->ndim - 1] : 0;
}

int64_t sk_tensor_numel(const sk_tensor *t)
{
	int64_t n = 1;
	for (int i = 0; i < t->ndim; i++)
		n *= t->shape[i];
	return n;
}

int64_t sk_tensor_row_bytes(const sk_tensor *t)
{
	if (t->nf4)
		return -1;
	return sk_dtype_nbytes(t->dtype, sk_tensor_cols(t));
}

int sk_tensor_slice(const sk_tensor *t, int64_t i, sk_tensor *out)
{
	if (t->nf4 || t->ndim < 2 || i < 0 || i >= t->shape[0])
		return sk_fail("%s", _("tensor slice out of range"));
	int64_t inner = sk_tensor_numel(t) / t->shape[0];
	int64_t bytes = sk_dtype_nbytes(t->dtype, inner);
	if (bytes < 0)
		return sk_fail("%s", _("tensor slice is not a whole number of blocks"));
	*out = *t;
	out->ndim = t->ndim - 1;
	for (int d = 0; d < out->ndim; d++)
		out->shape[d] = t->shape[d + 1];
	for (int d = out->ndim; d < SK_TENSOR_MAX_DIMS; d++)
		out->shape[d] = 0;
	out->data = (const char *)t->data + bytes * i;
	return 0;
}

#define SK_ARENA_ALIGN 64

void sk_arena_init_measure(sk_arena *a)
{
	memset(a, 0, sizeof *a);
}

int sk_arena_reserve(sk_arena *a, size_t cap)
{
	a->used = 0;
	a->peak = 0;
	if (a->base && a->cap >= cap)
		return 0;
	free(a->base);
	a->base = NULL;
	a->cap = 0;
	if (cap == 0)
		cap = SK_ARENA_ALIGN;
	void *p = NULL;
	if (posix_memalign(&p, SK_ARENA_ALIGN, cap) != 0)
		return sk_fail(_("out of memory (workspace of %zu bytes)"), cap);
	a->base = p;
	a->cap = cap;
	return 0;
}

void sk_arena_adopt(sk_arena *a, void *base, size_t cap)
{
	memset(a, 0, sizeof *a);
	a->base = base;
	a->cap = cap;
}

void *sk_arena_alloc(sk_arena *a, size_t bytes)
{
	size_t n = (bytes + SK_ARENA_ALIGN - 1) & ~(size_t)(SK_ARENA_ALIGN - 1);
	if (!a->base) { /* measuring */
		a->used += n;
		if (a->used > a->peak)
			a->peak = a->used;
		return NULL;
	}
	if (n > a->cap - a->used)
		return NULL;
	void *p = a->base + a->used;
	a->used += n;
	if (a->used > a->peak)
		a->peak = a->used;
	return p;
}

float *sk_arena_floats(sk_arena *a, size_t n)
{
	return sk_arena_alloc(a, n * sizeof(float));
}

void sk_arena_reset(sk_arena *a)
{
	a->used = 0;
}

void sk_arena_free(sk_arena *a)
{
	free(a->base);
	memset(a, 0, sizeof *a);
}
