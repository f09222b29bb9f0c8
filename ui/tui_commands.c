/* /commands: they act on what the views share (the conversation, the
 * session, the app), never on a view. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/i18n.h"
#include "ui/tui_commands.h"
#include "ui/tui_dump.h"
#include "ui/tui_internal.h"
#include "ui/tui_views.h"

static int is_cmd(const char *line, const char *cmd, const char **arg)
{
	size_t n = strlen(cmd);
	if (strncmp(line, cmd, n) || (line[n] && line[n] != ' ' && line[n] != '\t'))
		return 0;
	const char *p = line + n;
	while (*p == ' ' || *p == '\t')
		p++;
	*arg = p;
	return 1;
}

static void note(tui *t, const char *text)
{
	tui_conv_note(&t->conv, E_NOTE, text);
}

/* In the Chat view's scrollback, which /help then shows. */
static void help_lines(tui *t)
{
	note(t, _("Commands: /reset (new conversation), /system [TEXT], /adapter on|off|DIR, /save FILE,\n"
	          "/model PATH, /dump FILE (screen text), /quit. //TEXT sends a message starting with '/'.\n"
	          "Keys: Enter sends, Ctrl-C stops the answer, PgUp/PgDn scroll, Tab or F2-F5 switch views, F1 help."));
}

static void adapter(tui *t, const char *a)
{
	tui_session *s = &t->ses;
	if (!strcmp(a, "on") || !strcmp(a, "off")) {
		if (!s->adapter_path) {
			tui_flash(t, SK_LOG_ERROR, "%s", _("no adapter is loaded: /adapter DIR loads one"));
			return;
		}
		s->adapter_on = !strcmp(a, "on");
		note(t, s->adapter_on ? _("(adapter on)") : _("(adapter off: base model)"));
	} else if (*a) {
		tui_session_load_adapter(t, a);
	} else {
		tui_flash(t, SK_LOG_ERROR, "%s", _("/adapter: say on, off or a directory"));
	}
}

int tui_command(tui *t, const char *line, const char **text)
{
	const char *a;
	*text = NULL;
	if (!line[strspn(line, " \t")])
		return 0;
	if (line[0] != '/' || line[1] == '/') {
		*text = line[0] == '/' ? line + 1 : line;
		return 0;
	}
	if (is_cmd(line, "/quit", &a) || is_cmd(line, "/exit", &a)) {
		t->quit = 1;
	} else if (is_cmd(line, "/help", &a)) {
		help_lines(t);
		tui_show_view(t, V_CHAT);
	} else if (is_cmd(line, "/reset", &a)) {
		if (t->conv.busy) {
			tui_flash(t, SK_LOG_WARN, "%s", _("an answer is still coming: stop it with Ctrl-C first"));
			return 1;
		}
		tui_conv_reset(&t->conv);
		note(t, _("(new conversation)"));
	} else if (is_cmd(line, "/system", &a)) {
		free(t->conv.system);
		t->conv.system = *a ? strdup(a) : NULL;
		note(t, *a ? _("(system prompt set)") : _("(no system prompt)"));
	} else if (is_cmd(line, "/adapter", &a)) {
		adapter(t, a);
	} else if (is_cmd(line, "/save", &a)) {
		if (!*a)
			tui_flash(t, SK_LOG_ERROR, "%s", _("/save: give a file name"));
		else if (tui_conv_save(&t->conv, a) != 0)
			tui_flash(t, SK_LOG_ERROR, _("%s: cannot write the conversation"), a);
		else
			tui_flash(t, SK_LOG_INFO, _("conversation appended to %s"), a);
	} else if (is_cmd(line, "/model", &a)) {
		sk_engine_cmd c = { .type = SK_ECMD_LOAD_MODEL, .path = a };
		if (!*a || sk_engine_submit(t->eng, &c) != 0)
			tui_flash(t, SK_LOG_ERROR, "%s", *a ? sk_error() : _("/model: give a path"));
	} else if (is_cmd(line, "/dump", &a)) {
		if (!*a || tui_dump(a) != 0)
			tui_flash(t, SK_LOG_ERROR, _("/dump: cannot write %s"), *a ? a : "?");
		else
			tui_flash(t, SK_LOG_INFO, _("screen written to %s"), a);
	} else {
		tui_flash(t, SK_LOG_ERROR, _("unknown command %.40s (try /help)"), line);
	}
	return 1;
}
