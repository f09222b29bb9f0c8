#include "engine/format/tensor_view.h"

int64_t sk_tensor_view_numel(const sk_tensor_view *t)
{
	int64_t n = 1;
	for (int i = 0; i < t->ndim; i++)
		n *= t->shape[i];
	return n;
}
