/* The conversation as data (drawn by the Chat view): the turns the model
 * is sent, the system prompt (Compare sends it too), and the scrollback
 * shown, with the answer streaming into it. The Chat view, the /commands
 * and the engine's events write it. */
#ifndef SK_UI_TUI_CONVERSATION_H
#define SK_UI_TUI_CONVERSATION_H

#include <stddef.h>

#include "engine/engine.h"
#include "ui/tui_text.h"

/* Kinds of scrollback entries. */
enum { E_USER, E_MODEL, E_NOTE, E_STATS, E_ERROR };

typedef struct {
	sk_chat_msg *turns;     /* contents malloc'd */
	size_t n, cap;
	char *system;           /* NULL: none */
	tui_scroll shown;       /* the scrollback */
	unsigned long added;    /* entries added so far (a new one scrolls the view down) */
	int busy;               /* an answer is streaming */
	size_t answer;          /* its entry in shown */
} tui_conversation;

int tui_conv_push(tui_conversation *c, sk_chat_role role, const char *text);
void tui_conv_pop(tui_conversation *c);
/* A new conversation: no turns, empty scrollback (the system prompt stays). */
void tui_conv_reset(tui_conversation *c);
/* Adds an entry to the scrollback. */
tui_text *tui_conv_note(tui_conversation *c, int kind, const char *text);
/* The messages to send: the system prompt first, then turns[0, n)
 * (malloc'd array of borrowed strings; NULL when out of memory). */
sk_chat_msg *tui_conv_messages(const tui_conversation *c, const sk_chat_msg *turns, size_t n, size_t *out_n);
/* Appends the conversation to a JSONL file as {"messages": [...]}. */
int tui_conv_save(const tui_conversation *c, const char *path);
void tui_conv_free(tui_conversation *c);

#endif
