/* The conversation's turns, system prompt and scrollback. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/tui_conversation.h"

int tui_conv_push(tui_conversation *c, sk_chat_role role, const char *text)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		sk_chat_msg *v = realloc(c->turns, cap * sizeof *v);
		if (!v)
			return -1;
		c->turns = v;
		c->cap = cap;
	}
	char *s = strdup(text);
	if (!s)
		return -1;
	c->turns[c->n++] = (sk_chat_msg){ role, s };
	return 0;
}

void tui_conv_pop(tui_conversation *c)
{
	if (c->n)
		free((char *)c->turns[--c->n].content);
}

void tui_conv_reset(tui_conversation *c)
{
	while (c->n)
		tui_conv_pop(c);
	tui_scroll_free(&c->shown);
}

tui_text *tui_conv_note(tui_conversation *c, int kind, const char *text)
{
	c->added++;
	return tui_scroll_push(&c->shown, kind, text);
}

sk_chat_msg *tui_conv_messages(const tui_conversation *c, const sk_chat_msg *turns, size_t n, size_t *out_n)
{
	size_t k = 0;
	sk_chat_msg *m = malloc((n + 1) * sizeof *m);
	if (!m)
		return NULL;
	if (c->system && *c->system)
		m[k++] = (sk_chat_msg){ SK_CHAT_SYSTEM, c->system };
	for (size_t i = 0; i < n; i++)
		m[k++] = turns[i];
	*out_n = k;
	return m;
}

int tui_conv_save(const tui_conversation *c, const char *path)
{
	json_t *msgs = json_array();
	size_t n = 0;
	sk_chat_msg *m = tui_conv_messages(c, c->turns, c->n, &n);
	for (size_t i = 0; m && i < n; i++)
		json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", sk_role_name(m[i].role), "content",
		                                      m[i].content));
	free(m);
	json_t *o = json_pack("{s:o}", "messages", msgs);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	FILE *f = s ? fopen(path, "a") : NULL;
	int rc = f && fprintf(f, "%s\n", s) > 0 ? 0 : -1;
	if (f && fclose(f) != 0)
		rc = -1;
	free(s);
	return rc;
}

void tui_conv_free(tui_conversation *c)
{
	tui_conv_reset(c);
	free(c->turns);
	free(c->system);
	memset(c, 0, sizeof *c);
}
