/* The Log view: the engine's messages and the warnings flashed, with their
 * level (ui/tui_log.h holds them). */
#include <stdlib.h>
#include <string.h>

#include "engine/i18n.h"
#include "ui/bidi.h"
#include "ui/tui_colors.h"
#include "ui/tui_internal.h"
#include "ui/tui_text.h"
#include "ui/tui_views.h"

typedef struct {
	int scroll;             /* lines scrolled up from the bottom */
} log_view;

static log_view *self(const tui *t)
{
	return t->priv[V_LOG];
}

static int init(tui *t)
{
	t->priv[V_LOG] = calloc(1, sizeof(log_view));
	return t->priv[V_LOG] ? 0 : -1;
}

static void free_view(tui *t)
{
	free(t->priv[V_LOG]);
	t->priv[V_LOG] = NULL;
}

static void page(tui *t, int lines)
{
	log_view *v = self(t);
	v->scroll += lines;
	if (v->scroll < 0)
		v->scroll = 0;
}

static void draw(tui *t, WINDOW *w)
{
	log_view *v = self(t);
	const tui_log *store = &t->log;
	werase(w);
	int h = getmaxy(w), width = getmaxx(w);
	static const char *tags[] = { "debug", "info ", "warn ", "error" };
	int maxs = store->n > (size_t)h ? (int)(store->n - (size_t)h) : 0;
	if (v->scroll > maxs)
		v->scroll = maxs;
	size_t first = store->n > (size_t)h ? store->n - (size_t)h - (size_t)v->scroll : 0;
	for (int r = 0; r < h && first + (size_t)r < store->n; r++) {
		const tui_log_line *l = &store->v[first + r];
		int lv = l->level < 0 ? 0 : l->level > 3 ? 3 : l->level;
		attr_t a = lv == SK_LOG_ERROR ? tui_attr(t, C_ERR, A_BOLD) : lv == SK_LOG_WARN ? tui_attr(t, C_WARN, A_BOLD)
		                                                                      : tui_attr(t, C_DIM, A_DIM);
		tui_put(w, r, 0, 6, tags[lv], a);
		/* One line per message; a Persian message in visual order. */
		char *vis = NULL;
		const char *s = l->text;
		size_t n = strlen(s);
		if (t->o.bidi_app && sk_bidi_message_dir(s, n, t->o.rtl_ui) == SK_BIDI_RTL &&
		    sk_bidi_visual_line(s, n, SK_BIDI_RTL, &vis) == 0)
			s = vis;
		tui_put_visual(w, r, 6, width - 6, s, A_NORMAL);
		free(vis);
	}
	if (store->n == 0)
		tui_put(w, 0, 0, width, _("(no log messages yet)"), tui_attr(t, C_DIM, A_DIM));
}

const tui_view tui_view_log = {
	.name = N_("Log"),
	.init = init,
	.free = free_view,
	.draw = draw,
	.page = page,
};
