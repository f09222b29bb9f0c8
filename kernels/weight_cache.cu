// Dequantized copies of NF4 weights kept between uses (SK_CUDA_WCACHE=N: N
// entries, at most SK_CUDA_WCACHE_MAX; 0, the default, off). With gradient
// checkpointing a layer's forward is computed again right before its
// backward: the folded forward dequantizes each projection into bf16 rows
// of ld in + 8, and the backward's dx = dy · W can read that copy instead
// of dequantizing the weight a third time. Entries are keyed by the NF4
// codes' address, replaced least recently used first (one of the same size
// when there is one, so a layer's buffers pass to the next layer's), and
// all forgotten when any device memory is freed (a weight's address may be
// reused).
#include "kernels/context.cuh"

// The buffer for key: *hit 1 when it already holds key's copy (last used
// with `bytes`), else 0 and the caller fills it. NULL when the cache is off
// or a buffer cannot be had (the caller uses its scratch instead).
void *sk_cuda_wcache_get(sk_cuda *c, const void *key, size_t bytes, int *hit)
{
	*hit = 0;
	if (c->wcache_n <= 0 || !key)
		return NULL;
	sk_cuda_wcache_entry *victim = NULL, *same = NULL;
	for (int i = 0; i < c->wcache_n; i++) {
		sk_cuda_wcache_entry *e = &c->wcache[i];
		if (e->key == key && e->bytes == bytes) {
			e->used = ++c->wcache_clock;
			c->n_wcache_hits++;
			*hit = 1;
			return e->buf;
		}
		if (!e->buf) {
			if (!victim || victim->buf)
				victim = e;
			continue;
		}
		if (c->wcache_pin && e->used >= c->wcache_pin) // held by the op asking
			continue;
		if (e->bytes == bytes && (!same || e->used < same->used))
			same = e;
		if (!victim || (victim->buf && e->used < victim->used))
			victim = e;
	}
	sk_cuda_wcache_entry *e = victim && !victim->buf ? victim : same ? same : victim;
	if (!e)
		return NULL;
	if (e->bytes != bytes) {
		if (e->buf) { // a queued product may still read it
			cudaStreamSynchronize(c->stream);
			cudaFree(e->buf);
			e->buf = NULL, e->bytes = 0;
		}
		if (cudaMalloc(&e->buf, bytes) != cudaSuccess) {
			cudaGetLastError(); // no room: the caller's scratch serves, as without the cache
			e->buf = NULL, e->key = NULL;
			return NULL;
		}
		e->bytes = bytes;
	}
	e->key = key;
	e->lora_b = e->lora_a = NULL;
	e->used = ++c->wcache_clock;
	return e->buf;
}

void sk_cuda_wcache_hold(sk_cuda *c, int on)
{
	c->wcache_pin = on ? c->wcache_clock + 1 : 0;
}

// key's copy of `bytes` when the cache holds it, else NULL
const void *sk_cuda_wcache_find(sk_cuda *c, const void *key, size_t bytes)
{
	for (int i = 0; i < c->wcache_n; i++)
		if (c->wcache[i].key == key && key && c->wcache[i].bytes == bytes) {
			c->wcache[i].used = ++c->wcache_clock;
			c->n_wcache_hits++;
			return c->wcache[i].buf;
		}
	return NULL;
}

void sk_cuda_wcache_forget(sk_cuda *c, const void *key)
{
	for (int i = 0; key && i < c->wcache_n; i++)
		if (c->wcache[i].key == key) {
			c->wcache[i].key = NULL;
			c->wcache[i].lora_b = c->wcache[i].lora_a = NULL;
		}
}

// Every entry forgotten (buffers kept for reuse); with free_buffers, freed too.
void sk_cuda_wcache_clear(sk_cuda *c, int free_buffers)
{
	for (int i = 0; i < SK_CUDA_WCACHE_MAX; i++) {
		sk_cuda_wcache_entry *e = &c->wcache[i];
		e->key = NULL;
		e->lora_b = e->lora_a = NULL;
		if (free_buffers && e->buf) {
			cudaFree(e->buf);
			e->buf = NULL, e->bytes = 0;
		}
	}
}

static sk_cuda_wcache_entry *entry_of(sk_cuda *c, const void *key)
{
	for (int i = 0; key && i < c->wcache_n; i++)
		if (c->wcache[i].key == key)
			return &c->wcache[i];
	return NULL;
}

// The forward folds scale·B into the kept copy's last columns every time it
// uses it; a forward computed again (checkpointing) and the backward that
// follows it can skip writing or reading them again while nothing has
// written to that pair since (an optimizer step, an upload, a copy).
int sk_cuda_wcache_lora_current(sk_cuda *c, const void *key, const sk_cuda_lora *l, int with_a)
{
	const sk_cuda_wcache_entry *e = entry_of(c, key);
	return e && l && e->lora_b == l->B && e->lora_scale == l->scale && (!with_a || e->lora_a == l->A);
}

void sk_cuda_wcache_lora_folded(sk_cuda *c, const void *key, const sk_cuda_lora *l, int with_a)
{
	sk_cuda_wcache_entry *e = entry_of(c, key);
	if (!e)
		return;
	e->lora_b = l->B, e->lora_scale = l->scale;
	e->lora_b_bytes = (size_t)(l->out * l->r) * sizeof(float);
	e->lora_a = with_a ? l->A : NULL;
	e->lora_a_bytes = with_a ? (size_t)(l->r * l->in) * sizeof(float) : 0;
}

static int overlaps(const void *p, size_t bytes, const void *q, size_t qbytes)
{
	const char *a = (const char *)p, *b = (const char *)q;
	return q && a < b + qbytes && b < a + bytes;
}

void sk_cuda_wcache_lora_written(sk_cuda *c, const void *p, size_t bytes)
{
	for (int i = 0; i < SK_CUDA_WCACHE_MAX; i++) {
		sk_cuda_wcache_entry *e = &c->wcache[i];
		if (!e->lora_b)
			continue;
		if (!p || overlaps(p, bytes, e->lora_b, e->lora_b_bytes) || overlaps(p, bytes, e->lora_a, e->lora_a_bytes))
			e->lora_b = e->lora_a = NULL;
	}
}
