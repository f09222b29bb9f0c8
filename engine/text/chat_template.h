/* The Gemma chat template (tokenizer_config.json "chat_template" of Gemma 3
 * and Gemma 3n), for text-only conversations:
 *
 *   <bos><start_of_turn>user\n{system}\n\n{user}<end_of_turn>\n
 *   <start_of_turn>model\n{assistant}<end_of_turn>\n ...
 *   [<start_of_turn>model\n]              (generation prompt)
 *
 * What the Jinja template does, and so what this does:
 * - a leading system message is folded into the first user turn, followed by
 *   "\n\n"; the system text itself is NOT trimmed (the template adds it as is);
 * - user and assistant contents are trimmed like Jinja's `| trim`, i.e.
 *   Python's str.strip() (sk_chat_trim);
 * - empty contents are allowed ("<start_of_turn>user\n<end_of_turn>\n");
 * - "assistant" is written as "model"; "<end_of_turn>\n" ends every turn.
 * Where this is stricter than the template (it errors, the template does
 * something quiet and surprising): a system message after the first message
 * (the template renders a "system" turn at an odd position), a conversation
 * holding only a system message (the template drops it and renders "<bos>"),
 * unknown roles (the template renders them as turns at odd positions).
 * Special-token text inside contents (e.g. a literal "<end_of_turn>") is
 * tokenized as the special token, exactly as Hugging Face does. */
#ifndef SK_CHAT_TEMPLATE_H
#define SK_CHAT_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/text/tokenizer.h"

typedef enum {
	SK_CHAT_SYSTEM = 0,
	SK_CHAT_USER = 1,
	SK_CHAT_ASSISTANT = 2,
} sk_chat_role;

/* "system", "user", "assistant" or "model" (= assistant), case-sensitive like
 * the template. An unknown role is an error naming it. */
int sk_role_parse(const char *s, sk_chat_role *out);
/* "system", "user" or "assistant"; "?" for a value out of range. */
const char *sk_role_name(sk_chat_role r);

/* One message; content is NUL-terminated UTF-8. */
typedef struct {
	sk_chat_role role;
	const char *content;
} sk_chat_msg;

/* Per-token role labels, one byte per id. PROMPT: <bos>, the template's
 * scaffolding ("<start_of_turn>user\n", "<start_of_turn>model\n", the "\n"
 * after each <end_of_turn>, the generation prompt), system and user text and
 * the user turns' <end_of_turn>. RESPONSE: the assistant turns' content
 * tokens and their <end_of_turn> (what the "responses" loss mask trains on). */
enum {
	SK_CHAT_LABEL_PROMPT = 0,
	SK_CHAT_LABEL_RESPONSE = 1,
};

typedef struct {
	uint8_t *v;
	size_t n, cap;
} sk_chat_labels;

int sk_chat_labels_push(sk_chat_labels *l, uint8_t label);
void sk_chat_labels_free(sk_chat_labels *l);

/* Checks roles, order and contents. Errors name the message, counted from 1:
 * "message 3: roles must alternate user/assistant". */
int sk_chat_validate(const sk_chat_msg *msgs, size_t n);

/* The rendered template text (malloc'd, NUL-terminated; *out_len may be
 * NULL). */
int sk_chat_render_text(const sk_chat_msg *msgs, size_t n, int add_generation_prompt, char **out,
                        size_t *out_len);

/* The rendered text as runs of equal label, in order, covering it all. */
typedef struct {
	size_t start, end; /* byte range in the text */
	uint8_t label;     /* SK_CHAT_LABEL_* */
} sk_chat_span;

/* Like sk_chat_render_text, also giving the spans (malloc'd). */
int sk_chat_render_spans(const sk_chat_msg *msgs, size_t n, int add_generation_prompt, char **out,
                         size_t *out_len, sk_chat_span **spans, size_t *nspans);

/* Appends the token ids of the rendered conversation to ids and, when labels
 * is not NULL, one label per id to labels. The ids are those of Hugging
 * Face's apply_chat_template(..., tokenize=True): the text is encoded in one
 * piece without an added <bos> (the template writes it). On failure ids and
 * labels are left as they were. */
int sk_chat_render(const sk_tokenizer *tok, const sk_chat_msg *msgs, size_t n, int add_generation_prompt,
                   sk_ids *ids, sk_chat_labels *labels);

/* Jinja's `| trim` on UTF-8 text: strips the characters Python's str.strip()
 * strips (str.isspace(): ASCII \t\n\v\f\r, \x1c-\x1f, space, U+0085, U+00A0,
 * U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000; not ZWNJ,
 * ZWSP or BOM). Returns the start of the kept text inside s and its length. */
const char *sk_chat_trim(const char *s, size_t len, size_t *out_len);

/* Whether s[0..len) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int sk_chat_utf8_valid(const char *s, size_t len);

#endif
