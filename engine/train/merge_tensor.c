/* The per-tensor part of a merge: the fp32 delta math, rounding to the
 * output dtype, and writing a tensor's bytes in bounded chunks. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/i18n.h"
#include "engine/train/merge_internal.h"
#include "engine/format/quants.h"

/* Elements converted per step: 4 MB of fp32 keeps memory flat whatever the
 * tensor size. */
#define SK_MERGE_CHUNK ((int64_t)1 << 20)

void sk_merge_rows(float *w, const float *B, const float *A, int64_t rows, int64_t in, int32_t r, float scale,
                   float *acc)
{
	for (int64_t o = 0; o < rows; o++) {
		/* (B·A)[o] first, then scaled and added: the order PEFT uses
		 * (delta = (B @ A) * scaling; W += delta), so rounding matches */
		memset(acc, 0, (size_t)in * sizeof *acc);
		for (int32_t k = 0; k < r; k++) {
			float b = B[o * r + k];
			const float *a = A + (int64_t)k * in;
			for (int64_t i = 0; i < in; i++)
				acc[i] += b * a[i];
		}
		float *row = w + o * in;
		for (int64_t i = 0; i < in; i++)
			row[i] += acc[i] * scale;
	}
}

void sk_merge_store(sk_dtype t, const float *src, void *dst, int64_t n, int64_t *overflow)
{
	uint8_t *d = dst;
	int64_t over = 0;
	for (int64_t i = 0; i < n; i++) {
		float f = src[i];
		uint32_t u32;
		uint16_t u16;
		switch (t) {
		case SK_DT_F32:
			memcpy(&u32, &f, 4);
			d[4 * i] = (uint8_t)u32;
			d[4 * i + 1] = (uint8_t)(u32 >> 8);
			d[4 * i + 2] = (uint8_t)(u32 >> 16);
			d[4 * i + 3] = (uint8_t)(u32 >> 24);
			continue;
		case SK_DT_F16:
			u16 = sk_f32_to_f16(f);
			over += isfinite(f) && (u16 & 0x7fffu) == 0x7c00u;
			break;
		default:
			u16 = sk_f32_to_bf16(f);
			over += isfinite(f) && (u16 & 0x7fffu) == 0x7f80u;
			break;
		}
		d[2 * i] = (uint8_t)u16;
		d[2 * i + 1] = (uint8_t)(u16 >> 8);
	}
	if (overflow)
		*overflow += over;
}

int sk_merge_parse_size(const char *s, uint64_t *out)
{
	static const struct {
		const char *unit;
		double mult;
	} units[] = {
		{ "TIB", 1099511627776.0 }, { "GIB", 1073741824.0 }, { "MIB", 1048576.0 }, { "KIB", 1024.0 },
		{ "TB", 1e12 }, { "GB", 1e9 }, { "MB", 1e6 }, { "KB", 1e3 }, { "B", 1.0 },
	};
	if (!s)
		return -1;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || !(v > 0) || !isfinite(v) || *s == '-' || *s == '+' || isspace((unsigned char)*s))
		return -1;
	double mult = 1.0;
	if (*end) {
		size_t i, n = sizeof units / sizeof units[0];
		for (i = 0; i < n; i++)
			if (strcasecmp(end, units[i].unit) == 0)
				break;
		if (i == n)
			return -1;
		mult = units[i].mult;
	}
	double bytes = floor(v * mult);
	if (!(bytes >= 1.0) || bytes >= 1.8e19)
		return -1;
	*out = (uint64_t)bytes;
	return 0;
}

static void report(sk_merge_progress *p, uint64_t n)
{
	p->done += n;
	if (p->o && p->o->progress)
		p->o->progress(p->o->progress_ctx, p->shard, p->nshards, p->shard_name, p->done, p->total);
}


int sk_merge_write_tensor(FILE *fp, const char *path, const sk_merge_item *it, sk_merge_progress *p)
{
	const sk_tensor_view *v = it->v;
	if (it->kind == SK_MT_COPY) {
		/* straight from the mapping, 64 MB at a time for the progress */
		const uint8_t *src = v->data;
		uint64_t left = v->nbytes;
		while (left) {
			size_t n = left > (64u << 20) ? (64u << 20) : (size_t)left;
			errno = 0;
			if (sk_fwrite_all(fp, path, src, n))
				return -1;
			src += n;
			left -= n;
			report(p, n);
		}
		return 0;
	}
	int64_t numel = sk_tensor_view_numel(v);
	int64_t in = it->kind == SK_MT_MERGE ? v->shape[1] : numel;
	/* rows per step: as many as fit a chunk, at least one */
	int64_t step_rows = in > 0 && in < SK_MERGE_CHUNK ? SK_MERGE_CHUNK / in : 1;
	int64_t step_elems = it->kind == SK_MT_MERGE ? step_rows * in : SK_MERGE_CHUNK;
	int64_t in_es = sk_dtype_nbytes(v->dtype, 1), out_es = sk_dtype_nbytes(it->out, 1);
	if (step_elems < 1)
		step_elems = 1;
	float *buf = malloc((size_t)step_elems * sizeof *buf);
	float *acc = it->kind == SK_MT_MERGE ? malloc((size_t)(in > 0 ? in : 1) * sizeof *acc) : NULL;
	uint8_t *obuf = malloc((size_t)(step_elems * out_es));
	int rc = -1;
	if (!buf || !obuf || (it->kind == SK_MT_MERGE && !acc)) {
		sk_fail(_("%s: out of memory"), path);
		goto out;
	}
	for (int64_t at = 0; at < numel;) {
		int64_t n = numel - at < step_elems ? numel - at : step_elems;
		if (sk_dequantize(v->dtype, (const uint8_t *)v->data + at * in_es, buf, n)) {
			sk_fail(_("%s: tensor '%s': cannot read dtype %s"), v->file, v->name, sk_dtype_name(v->dtype));
			goto out;
		}
		if (it->kind == SK_MT_MERGE) {
			const sk_lora_pair *pr = it->pair;
			int64_t row0 = at / in;
			sk_merge_rows(buf, pr->B + row0 * pr->r, pr->A, n / in, in, pr->r, pr->scale, acc);
		}
		sk_merge_store(it->out, buf, obuf, n, &p->overflow);
		errno = 0;
		if (sk_fwrite_all(fp, path, obuf, (size_t)(n * out_es)))
			goto out;
		report(p, (uint64_t)(n * out_es));
		at += n;
	}
	rc = 0;
out:
	free(buf);
	free(acc);
	free(obuf);
	return rc;
}
