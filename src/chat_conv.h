/* The conversation of `sokhan chat`: an optional system prompt and the
 * alternating user/assistant turns, rendered through the chat template each
 * turn, and saved as one dataset line. */
#ifndef SK_CHAT_CONV_H
#define SK_CHAT_CONV_H

#include <stddef.h>

#include "engine/text/chat_template.h"
#include "engine/text/tokenizer.h"

typedef struct {
	char *system;        /* NULL: none */
	sk_chat_msg *msgs;   /* user, assistant, user, ...; contents malloc'd */
	size_t n, cap;
} sk_conv;

void sk_conv_free(sk_conv *c);
/* NULL or "" removes the system prompt. */
int sk_conv_set_system(sk_conv *c, const char *text);
/* Appends a turn (content copied). */
int sk_conv_push(sk_conv *c, sk_chat_role role, const char *text, size_t len);
/* Removes the last turn. */
void sk_conv_pop(sk_conv *c);
/* Removes every turn, keeps the system prompt. */
void sk_conv_reset(sk_conv *c);

/* The prompt ids (template with the generation prompt) for a conversation
 * ending in a user turn. While prompt + reserve tokens exceed ctx, the
 * oldest user/assistant pair is dropped (the system prompt stays);
 * *dropped counts the pairs. When the last user turn alone does not fit,
 * an error "the message is too long ..." and the conversation unchanged but
 * for the dropped pairs. */
int sk_conv_prompt(sk_conv *c, const sk_tokenizer *t, int ctx, int reserve, sk_ids *ids, int *dropped);

/* Appends the conversation to path as one JSON line
 * {"messages":[{"role":"system","content":..},{"role":"user",..},..]}
 * (the dataset format); the file is rewritten atomically. */
int sk_conv_save(const sk_conv *c, const char *path);

#endif
