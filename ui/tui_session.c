/* The model, the adapter and the training state as the engine's events
 * report them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/i18n.h"
#include "ui/tui_internal.h"
#include "ui/tui_session.h"

void tui_session_init(tui *t)
{
	memset(&t->ses, 0, sizeof t->ses);
	t->ses.train_state = sk_engine_can_train() ? SK_TRAIN_IDLE : SK_TRAIN_UNAVAILABLE;
}

void tui_session_free(tui *t)
{
	free(t->ses.adapter_path);
	t->ses.adapter_path = NULL;
}

/* The memory bars follow what is loaded. */
static void ask_memory(tui *t)
{
	sk_engine_cmd c = { .type = SK_ECMD_MEMORY };
	sk_engine_submit(t->eng, &c);
}

/* The file or folder name only: a long path would push the adapter state
 * off the status line. */
static void describe_model(tui_session *s, const sk_engine_event *ev)
{
	const char *path = ev->text ? ev->text : "?";
	size_t len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		len--;
	size_t start = len;
	while (start > 0 && path[start - 1] != '/')
		start--;
	char name[256];
	snprintf(name, sizeof name, "%.*s", (int)(len - start), path + start);
	snprintf(s->model_desc, sizeof s->model_desc, _("%s (%s, %d layers, %s)"), name, ev->info.arch,
	         ev->info.n_layers, ev->info.device);
}

void tui_session_event(tui *t, const sk_engine_event *ev)
{
	tui_session *s = &t->ses;
	switch (ev->type) {
	case SK_EV_MODEL_LOADED:
		s->model_loaded = 1;
		describe_model(s, ev);
		ask_memory(t);
		break;
	case SK_EV_LOG: tui_log_add(&t->log, ev->level, ev->text); break;
	case SK_EV_ERROR: tui_flash(t, SK_LOG_ERROR, "%s", ev->text ? ev->text : "?"); break;
	case SK_EV_ADAPTER_LOADED:
		if (ev->info.adapter_live)
			tui_flash(t, SK_LOG_INFO, _("Chat and Compare now use the adapter of the run %s as it trains"),
			          ev->text ? ev->text : "");
		else
			tui_flash(t, SK_LOG_INFO, ev->text ? _("adapter %s loaded") : _("adapter unloaded%s"),
			          ev->text ? ev->text : "");
		free(s->adapter_path);
		s->adapter_path = ev->text ? strdup(ev->text) : NULL;
		s->adapter_rank = ev->info.adapter_rank;
		s->adapter_on = s->adapter_path != NULL;
		s->adapter_live = ev->info.adapter_live;
		ask_memory(t);
		break;
	case SK_EV_TRAIN_STATE: s->train_state = ev->state; break;
	default: break;
	}
}

int tui_session_load_adapter(tui *t, const char *dir)
{
	sk_engine_cmd c = { .type = SK_ECMD_LOAD_ADAPTER, .path = dir };
	if (sk_engine_submit(t->eng, &c) != 0) {
		tui_flash(t, SK_LOG_ERROR, "%s", sk_error());
		return -1;
	}
	tui_flash(t, SK_LOG_INFO, _("loading adapter %s ..."), dir);
	return 0;
}
