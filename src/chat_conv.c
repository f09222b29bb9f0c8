/* Conversation state for `sokhan chat`. */
#include "src/chat_conv.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/format/files.h"

/* A dataset file we append to is read whole; bound it. */
#define SK_CONV_MAX_FILE ((size_t)1 << 30)

void sk_conv_reset(sk_conv *c)
{
	for (size_t i = 0; i < c->n; i++)
		free((char *)c->msgs[i].content);
	c->n = 0;
}

void sk_conv_free(sk_conv *c)
{
	sk_conv_reset(c);
	free(c->msgs);
	free(c->system);
	memset(c, 0, sizeof *c);
}

int sk_conv_set_system(sk_conv *c, const char *text)
{
	char *s = NULL;
	if (text && *text && !(s = strdup(text)))
		return sk_fail("chat: out of memory");
	free(c->system);
	c->system = s;
	return 0;
}

int sk_conv_push(sk_conv *c, sk_chat_role role, const char *text, size_t len)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		sk_chat_msg *v = realloc(c->msgs, cap * sizeof *v);
		if (!v)
			return sk_fail("chat: out of memory");
		c->msgs = v;
		c->cap = cap;
	}
	char *s = malloc(len + 1);
	if (!s)
		return sk_fail("chat: out of memory");
	memcpy(s, text, len);
	s[len] = '\0';
	c->msgs[c->n++] = (sk_chat_msg){ role, s };
	return 0;
}

void sk_conv_pop(sk_conv *c)
{
	if (c->n > 0)
		free((char *)c->msgs[--c->n].content);
}

/* The messages as the template wants them: system first when there is one.
 * The array borrows the contents. */
static sk_chat_msg *all_msgs(const sk_conv *c, size_t *n)
{
	sk_chat_msg *v = malloc((c->n + 1) * sizeof *v);
	if (!v) {
		sk_fail("chat: out of memory");
		return NULL;
	}
	size_t k = 0;
	if (c->system)
		v[k++] = (sk_chat_msg){ SK_CHAT_SYSTEM, c->system };
	if (c->n)
		memcpy(v + k, c->msgs, c->n * sizeof *v);
	*n = k + c->n;
	return v;
}

static void drop_oldest_pair(sk_conv *c)
{
	size_t k = c->n >= 2 ? 2 : c->n;
	for (size_t i = 0; i < k; i++)
		free((char *)c->msgs[i].content);
	memmove(c->msgs, c->msgs + k, (c->n - k) * sizeof *c->msgs);
	c->n -= k;
}

int sk_conv_prompt(sk_conv *c, const sk_tokenizer *t, int ctx, int reserve, sk_ids *ids, int *dropped)
{
	*dropped = 0;
	for (;;) {
		size_t n;
		sk_chat_msg *m = all_msgs(c, &n);
		if (!m)
			return -1;
		ids->n = 0;
		int rc = sk_chat_render(t, m, n, 1, ids, NULL);
		free(m);
		if (rc != 0)
			return -1;
		if ((long long)ids->n + reserve <= ctx)
			return 0;
		if (c->n <= 1)
			return sk_fail("the message is too long: %zu prompt tokens, and the context holds %d "
			               "(with %d for the answer)", ids->n, ctx, reserve);
		drop_oldest_pair(c);
		(*dropped)++;
	}
}

int sk_conv_save(const sk_conv *c, const char *path)
{
	size_t n;
	sk_chat_msg *m = all_msgs(c, &n);
	if (!m)
		return -1;
	json_t *arr = json_array(), *root = json_object();
	int bad = !arr || !root || json_object_set(root, "messages", arr) != 0;
	for (size_t i = 0; i < n && !bad; i++) {
		json_t *o = json_pack("{s:s, s:s}", "role", sk_role_name(m[i].role), "content", m[i].content);
		bad = !o || json_array_append_new(arr, o) != 0;
	}
	free(m);
	char *line = bad ? NULL : json_dumps(root, JSON_COMPACT);
	json_decref(arr);
	json_decref(root);
	if (!line)
		return sk_fail("%s: cannot encode the conversation as JSON (invalid UTF-8?)", path);
	char *old = NULL;
	size_t old_len = 0;
	if (sk_file_exists(path) && sk_read_file(path, SK_CONV_MAX_FILE, &old, &old_len) != 0) {
		free(line);
		return -1;
	}
	size_t len = strlen(line);
	int need_nl = old_len > 0 && old[old_len - 1] != '\n';
	char *buf = malloc(old_len + need_nl + len + 1);
	if (!buf) {
		free(old);
		free(line);
		return sk_fail("chat: out of memory");
	}
	if (old_len)
		memcpy(buf, old, old_len);
	if (need_nl)
		buf[old_len] = '\n';
	memcpy(buf + old_len + need_nl, line, len);
	buf[old_len + need_nl + len] = '\n';
	int rc = sk_write_file_atomic(path, buf, old_len + need_nl + len + 1);
	free(buf);
	free(old);
	free(line);
	return rc;
}
