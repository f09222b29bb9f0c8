/* A training chart as standalone SVG text (no fonts, scripts or external
 * files): train loss raw (thin) and smoothed (EMA, thick) with eval loss
 * points in the top panel, learning rate and gradient norm in two panels
 * below, all sharing the step axis; axes, ticks, grid, legend and title. */
#ifndef SK_SVG_PLOT_H
#define SK_SVG_PLOT_H

#include <stddef.h>

#include "engine/train/metrics.h"

typedef struct {
	size_t skipped;  /* non-finite values left out (loss, lr, grad norm, eval loss) */
	double ema_beta; /* smoothing used for the thick loss line */
	double last_loss, last_ema; /* NaN when there is no finite loss */
} sk_plot_info;

/* Renders the series; title is any UTF-8 text (escaped here). Returns the
 * SVG (malloc'd, NUL-terminated, *len bytes), or NULL + sk_error() when
 * there is no train record. Numbers are formatted in the C locale whatever
 * the process locale is. */
char *sk_svg_plot_training(const sk_metrics_series *s, const char *title, sk_plot_info *info, size_t *len);

/* The EMA smoothing factor used for n points: 0.6 for a handful of points,
 * growing to 0.98 for long runs (a window of about n/20 points). */
double sk_plot_ema_beta(size_t n);

#endif
