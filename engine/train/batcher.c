/* Batches: split, per-epoch seeded shuffle, packing, padding, resumable
 * position. See batcher.h for the exact rules. */
#include "engine/train/batcher.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/splitmix.h"

static uint64_t stream_state(uint64_t seed, uint64_t stream)
{
	uint64_t s = seed ^ (stream * 0xd1342543de82ef95ULL + 0x632be59bd9b4e019ULL);
	sk_splitmix64(&s);
	return s;
}

/* Uniform in [0, n) without modulo bias (rejects the incomplete last run). */
static uint64_t below(uint64_t *s, uint64_t n)
{
	uint64_t lim = UINT64_MAX - UINT64_MAX % n, r;
	do r = sk_splitmix64(s);
	while (r >= lim);
	return r % n;
}

static void shuffle(size_t *v, size_t n, uint64_t state)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)below(&state, i);
		size_t t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

/* ---- eval split ---- */

int sk_split_make(size_t n, double frac, uint64_t seed, sk_split *out)
{
	memset(out, 0, sizeof *out);
	if (!(frac >= 0.0 && frac < 1.0)) return sk_fail(_("eval fraction %g is not in [0, 1)"), frac);
	if (n > SIZE_MAX / sizeof(size_t)) return sk_fail("%s", _("split: too many examples"));
	size_t ne = (size_t)floor(frac * (double)n + 0.5);
	if (frac > 0 && ne == 0 && n >= 2) ne = 1;
	if (ne >= n) ne = n ? n - 1 : 0;
	size_t *all = malloc((n ? n : 1) * sizeof *all);
	if (!all) return sk_fail("%s", _("split: out of memory"));
	for (size_t i = 0; i < n; i++) all[i] = i;
	shuffle(all, n, stream_state(seed, UINT64_MAX));
	out->eval = malloc((ne ? ne : 1) * sizeof *out->eval);
	out->train = malloc((n - ne ? n - ne : 1) * sizeof *out->train);
	if (!out->eval || !out->train) {
		free(all);
		sk_split_free(out);
		return sk_fail("%s", _("split: out of memory"));
	}
	memcpy(out->eval, all, ne * sizeof *all);
	memcpy(out->train, all + ne, (n - ne) * sizeof *all);
	out->neval = ne;
	out->ntrain = n - ne;
	qsort(out->eval, out->neval, sizeof *out->eval, cmp_size);
	qsort(out->train, out->ntrain, sizeof *out->train, cmp_size);
	free(all);
	return 0;
}

void sk_split_free(sk_split *s)
{
	free(s->train);
	free(s->eval);
	memset(s, 0, sizeof *s);
}

/* ---- the batcher ---- */

struct sk_batcher {
	const sk_dataset *ds;
	sk_batcher_opts o;
	size_t *subset, n;
	size_t *order;      /* the order of epoch order_epoch */
	size_t order_epoch; /* SIZE_MAX: none built yet */
	sk_batch_pos pos;
	/* batch buffers */
	int32_t *ids, *seg;
	uint8_t *target;
	size_t cells; /* capacity of ids/seg/target */
	size_t *len, *row_ex, *ex;
};

void sk_batcher_opts_init(sk_batcher_opts *o)
{
	memset(o, 0, sizeof *o);
	o->batch_size = 1;
	o->shuffle = 1;
	o->epochs = 1;
}

void sk_batcher_free(sk_batcher *b)
{
	if (!b) return;
	free(b->subset);
	free(b->order);
	free(b->ids);
	free(b->seg);
	free(b->target);
	free(b->len);
	free(b->row_ex);
	free(b->ex);
	free(b);
}

sk_batcher *sk_batcher_new(const sk_dataset *ds, const size_t *subset, size_t n, const sk_batcher_opts *o)
{
	if (!ds || !o) {
		sk_fail("%s", _("batcher: no dataset"));
		return NULL;
	}
	if (!subset) n = ds->n;
	if (n == 0) {
		sk_fail(_("%s: no examples to batch"), ds->path);
		return NULL;
	}
	if (o->batch_size == 0 || o->epochs == 0) {
		sk_fail("%s", _("batcher: batch size and epochs must be at least 1"));
		return NULL;
	}
	if (o->packing && o->max_len == 0) {
		sk_fail("%s", _("batcher: packing needs a maximum length"));
		return NULL;
	}
	if (o->batch_size > ((size_t)1 << 20) || n > SIZE_MAX / 4 / sizeof(size_t)) {
		sk_fail("%s", _("batcher: batch size or dataset too large"));
		return NULL;
	}
	sk_batcher *b = calloc(1, sizeof *b);
	if (!b) goto oom;
	b->ds = ds;
	b->o = *o;
	b->n = n;
	b->order_epoch = SIZE_MAX;
	b->subset = malloc(n * sizeof *b->subset);
	b->order = malloc(n * sizeof *b->order);
	b->len = malloc(o->batch_size * sizeof *b->len);
	b->row_ex = malloc((o->batch_size + 1) * sizeof *b->row_ex);
	if (!b->subset || !b->order || !b->len || !b->row_ex) goto oom;
	for (size_t i = 0; i < n; i++) {
		b->subset[i] = subset ? subset[i] : i;
		if (b->subset[i] >= ds->n) {
			sk_fail(_("batcher: example index %zu out of range (%zu examples)"), b->subset[i], ds->n);
			sk_batcher_free(b);
			return NULL;
		}
	}
	return b;
oom:
	sk_batcher_free(b);
	sk_fail("%s", _("batcher: out of memory"));
	return NULL;
}

int sk_batcher_epoch_order(sk_batcher *b, size_t epoch, size_t *out)
{
	memcpy(out, b->subset, b->n * sizeof *out);
	if (b->o.shuffle) shuffle(out, b->n, stream_state(b->o.seed, epoch));
	return 0;
}

static void build_order(sk_batcher *b, size_t epoch)
{
	if (b->order_epoch == epoch) return;
	sk_batcher_epoch_order(b, epoch, b->order);
	b->order_epoch = epoch;
}

static size_t ex_len(const sk_batcher *b, size_t k)
{
	size_t n = b->ds->ex[k].n;
	return b->o.max_len && n > b->o.max_len ? b->o.max_len : n;
}

/* One row starting at order[*index]: advances *index past the examples it
 * takes and returns the row's length. */
static size_t plan_row(const sk_batcher *b, size_t *index)
{
	size_t len = ex_len(b, b->order[(*index)++]);
	if (b->o.packing)
		while (*index < b->n && len + ex_len(b, b->order[*index]) <= b->o.max_len)
			len += ex_len(b, b->order[(*index)++]);
	return len;
}

long long sk_batcher_epoch_batches(sk_batcher *b, size_t epoch)
{
	if (!b->o.packing) return (long long)((b->n + b->o.batch_size - 1) / b->o.batch_size);
	build_order(b, epoch);
	size_t index = 0, rows = 0;
	while (index < b->n) {
		plan_row(b, &index);
		rows++;
	}
	return (long long)((rows + b->o.batch_size - 1) / b->o.batch_size);
}

long long sk_batcher_total_batches(sk_batcher *b)
{
	long long t = 0;
	for (size_t e = 0; e < b->o.epochs; e++) t += sk_batcher_epoch_batches(b, e);
	return t;
}

sk_batch_pos sk_batcher_tell(const sk_batcher *b) { return b->pos; }

int sk_batcher_seek(sk_batcher *b, sk_batch_pos pos)
{
	if (pos.index > b->n || pos.epoch > b->o.epochs || (pos.epoch == b->o.epochs && pos.index != 0))
		return sk_fail(_("batcher: position epoch %zu index %zu is outside %zu epochs of %zu examples"),
		               pos.epoch, pos.index, b->o.epochs, b->n);
	if (pos.index == b->n) pos = (sk_batch_pos){pos.epoch + 1, 0};
	if (pos.epoch > b->o.epochs)
		return sk_fail(_("batcher: position epoch %zu is past the last epoch"), pos.epoch);
	b->pos = pos;
	return 0;
}

int sk_batcher_next(sk_batcher *b, sk_batch *out)
{
	memset(out, 0, sizeof *out);
	if (b->pos.epoch >= b->o.epochs) return 0;
	build_order(b, b->pos.epoch);
	const sk_dataset *ds = b->ds;
	size_t start = b->pos.index, index = start, rows = 0, cols = 0;
	b->row_ex[0] = start;
	while (rows < b->o.batch_size && index < b->n) {
		size_t l = plan_row(b, &index);
		b->len[rows++] = l;
		b->row_ex[rows] = index;
		if (l > cols) cols = l;
	}
	size_t nex = index - start;
	if (rows && cols > SIZE_MAX / rows / sizeof(int32_t)) return sk_fail("%s", _("batcher: batch too large"));
	size_t cells = rows * cols;
	if (cells > b->cells) {
		int32_t *ids = realloc(b->ids, cells * sizeof *ids);
		if (ids) b->ids = ids;
		int32_t *seg = realloc(b->seg, cells * sizeof *seg);
		if (seg) b->seg = seg;
		uint8_t *t = realloc(b->target, cells);
		if (t) b->target = t;
		if (!ids || !seg || !t) return sk_fail("%s", _("batcher: out of memory"));
		b->cells = cells;
	}
	size_t *ex = realloc(b->ex, (nex ? nex : 1) * sizeof *ex);
	if (!ex) return sk_fail("%s", _("batcher: out of memory"));
	b->ex = ex;
	size_t tokens = 0, targets = 0;
	for (size_t r = 0; r < rows; r++) {
		int32_t *rid = b->ids + r * cols, *rseg = b->seg + r * cols;
		uint8_t *rt = b->target + r * cols;
		size_t at = 0;
		for (size_t k = b->row_ex[r]; k < b->row_ex[r + 1]; k++) {
			size_t e = b->order[k], n = ex_len(b, e);
			ex[k - start] = e;
			memcpy(rid + at, ds->ids + ds->ex[e].off, n * sizeof *rid);
			memcpy(rt + at, ds->target + ds->ex[e].off, n);
			for (size_t i = 0; i < n; i++) {
				rseg[at + i] = (int32_t)(k - b->row_ex[r]);
				targets += rt[at + i] != 0;
			}
			at += n;
		}
		tokens += at;
		for (size_t i = at; i < cols; i++) {
			rid[i] = b->o.pad_id;
			rt[i] = 0;
			rseg[i] = -1;
		}
	}
	for (size_t r = 0; r <= rows; r++) b->row_ex[r] -= start;
	out->rows = rows;
	out->cols = cols;
	out->ids = b->ids;
	out->target = b->target;
	out->seg = b->seg;
	out->len = b->len;
	out->ex = ex;
	out->nex = nex;
	out->row_ex = b->row_ex;
	out->tokens = tokens;
	out->targets = targets;
	out->pos = b->pos;
	b->pos = index == b->n ? (sk_batch_pos){b->pos.epoch + 1, 0} : (sk_batch_pos){b->pos.epoch, index};
	out->next = b->pos;
	return 1;
}
