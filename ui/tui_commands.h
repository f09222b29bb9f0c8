/* The /commands of the input line, the same in Chat and Compare: /quit,
 * /help, /reset, /system, /adapter, /save, /model, /dump. */
#ifndef SK_UI_TUI_COMMANDS_H
#define SK_UI_TUI_COMMANDS_H

typedef struct tui tui;

/* Runs line when it is a /command and returns 1. Otherwise returns 0 and
 * *text is what the view is to send (a leading "//" is a "/"), NULL for a
 * blank line. */
int tui_command(tui *t, const char *line, const char **text);

#endif
