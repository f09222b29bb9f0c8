/* The table of views and the calls the app makes over all of them. */
#include "ui/tui_internal.h"
#include "ui/tui_views.h"

const tui_view *const tui_views[V_N] = {
	[V_CHAT] = &tui_view_chat,
	[V_COMPARE] = &tui_view_compare,
	[V_TRAIN] = &tui_view_train,
	[V_LOG] = &tui_view_log,
};

int tui_views_init(tui *t)
{
	for (int v = 0; v < V_N; v++)
		if (tui_views[v]->init && tui_views[v]->init(t) != 0)
			return -1;
	return 0;
}

void tui_views_free(tui *t)
{
	for (int v = 0; v < V_N; v++)
		if (tui_views[v]->free)
			tui_views[v]->free(t);
}

void tui_views_event(tui *t, const sk_engine_event *ev)
{
	for (int v = 0; v < V_N; v++)
		if (tui_views[v]->event)
			tui_views[v]->event(t, ev);
}

int tui_views_busy(const tui *t)
{
	for (int v = 0; v < V_N; v++)
		if (tui_views[v]->busy && tui_views[v]->busy(t))
			return 1;
	return 0;
}

void tui_show_view(tui *t, int v)
{
	t->view = ((v % V_N) + V_N) % V_N;
	if (tui_views[t->view]->focus)
		tui_views[t->view]->focus(t);
	t->dirty = 1;
}
