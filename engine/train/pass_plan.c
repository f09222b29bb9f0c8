/* Merged passes: a step of four ~640-token micro-batches at a 2,048 budget
 * filled in turn makes passes of ~1,920 and ~640 tokens; the same two
 * passes of ~1,280 run the device faster (a short pass runs it at a lower
 * rate, docs/perf.md run 14) and lower the peak, which follows the largest. */
#include "engine/train/pass_plan.h"

/* Passes of at most cap tokens, filled in turn; their number, and their
 * sizes into group when given. */
static int fill(const size_t *tokens, int n, size_t cap, int *group)
{
	int k = 0;
	size_t in = 0;
	for (int i = 0; i < n; i++) {
		if (k && in + tokens[i] <= cap) {
			in += tokens[i];
			if (group)
				group[k - 1]++;
		} else {
			if (group)
				group[k] = 1;
			k++;
			in = tokens[i];
		}
	}
	return k;
}

int sk_pass_plan(const size_t *tokens, int n, size_t budget, int *group)
{
	if (n <= 0)
		return 0;
	int k = fill(tokens, n, budget, group);
	if (k < 2 || k == n)
		return k;
	/* the smallest cap that still fills no more than k passes, by bisection
	 * (hi, the budget, always does) */
	size_t lo = 0, hi = budget;
	for (int i = 0; i < n; i++)
		lo = tokens[i] > lo ? tokens[i] : lo;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (fill(tokens, n, mid, NULL) <= k)
			hi = mid;
		else
			lo = mid + 1;
	}
	return fill(tokens, n, hi, group);
}
