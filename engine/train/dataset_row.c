/* One JSONL row of a dataset: "messages", ShareGPT "conversations" or
 * "text", checked and turned into chat messages. No tokenizer here, so the
 * parser can be fuzzed on its own. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "engine/text/chat_template.h"
#include "engine/train/dataset.h"
#include "engine/error.h"
#include "engine/i18n.h"

/* ShareGPT's "from" values (and the plain role names some exports use). */
static int sharegpt_role(const char *s, sk_chat_role *out)
{
	if (!strcmp(s, "system")) *out = SK_CHAT_SYSTEM;
	else if (!strcmp(s, "human") || !strcmp(s, "user")) *out = SK_CHAT_USER;
	else if (!strcmp(s, "gpt") || !strcmp(s, "assistant") || !strcmp(s, "model")) *out = SK_CHAT_ASSISTANT;
	else
		return -1;
	return 0;
}

static int blank(const char *s, size_t len)
{
	size_t k;
	sk_chat_trim(s, len, &k);
	return k == 0;
}

static int parse_turns(json_t *arr, int sharegpt, sk_dataset_row *row)
{
	const char *key = sharegpt ? "conversations" : "messages";
	const char *rk = sharegpt ? "from" : "role", *ck = sharegpt ? "value" : "content";
	if (!json_is_array(arr)) return sk_fail(_("\"%s\" is not an array"), key);
	size_t n = json_array_size(arr);
	if (n == 0) return sk_fail(_("\"%s\" is empty"), key);
	row->msgs = calloc(n, sizeof *row->msgs);
	if (!row->msgs) return sk_fail("%s", _("out of memory"));
	for (size_t i = 0; i < n; i++) {
		json_t *m = json_array_get(arr, i);
		if (!json_is_object(m)) return sk_fail(_("message %zu: not an object"), i + 1);
		json_t *r = json_object_get(m, rk), *c = json_object_get(m, ck);
		if (!r) return sk_fail(_("message %zu: missing \"%s\""), i + 1, rk);
		if (!json_is_string(r)) return sk_fail(_("message %zu: \"%s\" is not a string"), i + 1, rk);
		const char *rs = json_string_value(r);
		int bad = sharegpt ? sharegpt_role(rs, &row->msgs[i].role) : sk_role_parse(rs, &row->msgs[i].role);
		if (bad)
			return sk_fail(_("message %zu: unknown %s \"%.40s\""), i + 1, rk, rs);
		if (!c) return sk_fail(_("message %zu: missing \"%s\""), i + 1, ck);
		if (!json_is_string(c)) return sk_fail(_("message %zu: \"%s\" is not a string"), i + 1, ck);
		/* jansson strings may hold "\u0000"; the template works on C
		 * strings, so such content would be silently cut. */
		if (strlen(json_string_value(c)) != json_string_length(c))
			return sk_fail(_("message %zu: content holds a NUL character"), i + 1);
		if (blank(json_string_value(c), json_string_length(c)))
			return sk_fail(_("message %zu: empty content"), i + 1);
		row->msgs[i].content = json_string_value(c);
		row->nmsgs = i + 1;
	}
	if (sk_chat_validate(row->msgs, n)) {
		/* Drop the template's "chat: " prefix: the row context is ours. */
		const char *e = sk_error(), *p = strstr(e, "message ");
		char buf[256];
		snprintf(buf, sizeof buf, "%s", p ? p : e);
		return sk_fail("%s", buf);
	}
	if (row->msgs[n - 1].role != SK_CHAT_ASSISTANT)
		return sk_fail(_("message %zu: the conversation must end with an assistant message"), n);
	return 0;
}

int sk_dataset_row_parse(const char *line, size_t len, sk_dataset_row *row)
{
	memset(row, 0, sizeof *row);
	json_error_t e;
	json_t *j = json_loadb(line, len, JSON_ALLOW_NUL, &e);
	if (!j) return sk_fail(_("invalid JSON at column %d: %s"), e.column, e.text);
	row->json = j;
	if (!json_is_object(j)) {
		sk_dataset_row_free(row);
		return sk_fail("%s", _("not a JSON object"));
	}
	json_t *v;
	int rc;
	if ((v = json_object_get(j, "messages"))) {
		row->format = SK_ROW_MESSAGES;
		rc = parse_turns(v, 0, row);
	} else if ((v = json_object_get(j, "conversations"))) {
		row->format = SK_ROW_SHAREGPT;
		rc = parse_turns(v, 1, row);
	} else if ((v = json_object_get(j, "text"))) {
		row->format = SK_ROW_TEXT;
		if (!json_is_string(v)) {
			rc = sk_fail("%s", _("\"text\" is not a string"));
		} else if (blank(json_string_value(v), json_string_length(v))) {
			rc = sk_fail("%s", _("\"text\" is empty"));
		} else {
			row->text = json_string_value(v);
			row->text_len = json_string_length(v);
			rc = 0;
		}
	} else {
		rc = sk_fail("%s", _("no \"messages\", \"conversations\" or \"text\" field"));
	}
	if (rc) sk_dataset_row_free(row);
	return rc;
}

void sk_dataset_row_free(sk_dataset_row *row)
{
	free(row->msgs);
	if (row->json) json_decref((json_t *)row->json);
	memset(row, 0, sizeof *row);
}
