/* Chat template: text and ids against Hugging Face's apply_chat_template
 * (tests/fixtures/chat/reference.jsonl, from make_reference.py), labels,
 * trimming against Python's str.strip() set, and the error cases. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "engine/text/chat_template.h"
#include "engine/error.h"
#include "tests/test.h"

typedef struct {
	char *name;
	sk_chat_msg *msgs;
	size_t n;
	const char *expect_error; /* from the fixture, or NULL */
	char role_error[256];     /* sk_role_parse's message when a role was refused */
} conv;

typedef struct {
	const char *name;
	int gen;
	const char *text;
	json_t *ids, *responses;
} ref;

static json_t *g_convs_json, *g_refs_all;
static conv g_convs[128];
static size_t g_nconvs;
static ref g_refs[256];
static size_t g_nrefs;
static json_t *g_pyspace; /* code points Python's isspace() accepts */
static sk_tokenizer *g_tok;
static int g_tok_absent;

static json_t *load_jsonl(const char *path, json_t **lines, size_t max, size_t *n)
{
	FILE *f = fopen(path, "r");
	char buf[65536];
	*n = 0;
	if (!f) return NULL;
	json_t *arr = json_array();
	while (fgets(buf, sizeof buf, f)) {
		json_error_t e;
		json_t *j = json_loads(buf, 0, &e);
		if (!j) {
			fprintf(stderr, "%s: %s\n", path, e.text);
			continue;
		}
		json_array_append_new(arr, j);
		if (lines && *n < max) lines[(*n)++] = j;
	}
	fclose(f);
	return arr;
}

static void load_fixtures(void)
{
	size_t n;
	g_convs_json = load_jsonl(sk_test_path("tests/fixtures/chat/conversations.jsonl"), NULL, 0, &n);
	if (g_convs_json) {
		size_t i;
		json_t *c;
		json_array_foreach(g_convs_json, i, c)
		{
			if (g_nconvs == sizeof g_convs / sizeof *g_convs) break;
			conv *cv = &g_convs[g_nconvs++];
			json_t *m = json_object_get(c, "messages");
			cv->name = (char *)json_string_value(json_object_get(c, "name"));
			cv->expect_error = json_string_value(json_object_get(c, "expect_error"));
			cv->n = json_array_size(m);
			cv->msgs = calloc(cv->n + 1, sizeof *cv->msgs);
			for (size_t k = 0; k < cv->n; k++) {
				json_t *mk = json_array_get(m, k);
				cv->msgs[k].content = json_string_value(json_object_get(mk, "content"));
				if (sk_role_parse(json_string_value(json_object_get(mk, "role")), &cv->msgs[k].role) &&
				    !cv->role_error[0])
					snprintf(cv->role_error, sizeof cv->role_error, "%s", sk_error());
			}
		}
	}
	static json_t *lines[256];
	g_refs_all = load_jsonl(sk_test_path("tests/fixtures/chat/reference.jsonl"), lines, 256, &n);
	for (size_t i = 0; i < n; i++) {
		if (json_object_get(lines[i], "py_whitespace")) g_pyspace = json_object_get(lines[i], "py_whitespace");
		if (!json_object_get(lines[i], "ids")) continue;
		ref *r = &g_refs[g_nrefs++];
		r->name = json_string_value(json_object_get(lines[i], "name"));
		r->gen = json_is_true(json_object_get(lines[i], "add_generation_prompt"));
		r->text = json_string_value(json_object_get(lines[i], "text"));
		r->ids = json_object_get(lines[i], "ids");
		r->responses = json_object_get(lines[i], "responses");
	}
}

static conv *find_conv(const char *name)
{
	for (size_t i = 0; i < g_nconvs; i++)
		if (g_convs[i].name && name && !strcmp(g_convs[i].name, name)) return &g_convs[i];
	return NULL;
}

static void load_tokenizer(void)
{
	const char *p = getenv("SK_TOKENIZER_JSON");
	static char buf[4096];
	if (!p || !*p) {
		snprintf(buf, sizeof buf, "%s/../shared/data/gemma3-tokenizer/tokenizer.json", sk_test_srcdir());
		p = buf;
	}
	if (access(p, R_OK) != 0) {
		g_tok_absent = 1;
		printf("# %s not found: token id tests skipped (set SK_TOKENIZER_JSON)\n", p);
		return;
	}
	g_tok = sk_tokenizer_load(p);
	if (!g_tok) fprintf(stderr, "tokenizer: %s\n", sk_error());
}

/* ---- no tokenizer needed ---- */

TEST(fixtures_loaded)
{
	CHECK(g_nconvs >= 40);
	CHECK(g_nrefs >= 60);
	CHECK(g_pyspace && json_array_size(g_pyspace) == 29);
	size_t valid = 0;
	for (size_t i = 0; i < g_nconvs; i++) valid += !g_convs[i].expect_error;
	CHECK_EQ_INT(g_nrefs, 2 * valid);
}

TEST(role_parse)
{
	sk_chat_role r = SK_CHAT_USER;
	CHECK(sk_role_parse("system", &r) == 0 && r == SK_CHAT_SYSTEM);
	CHECK(sk_role_parse("user", &r) == 0 && r == SK_CHAT_USER);
	CHECK(sk_role_parse("assistant", &r) == 0 && r == SK_CHAT_ASSISTANT);
	r = SK_CHAT_USER;
	CHECK(sk_role_parse("model", &r) == 0 && r == SK_CHAT_ASSISTANT);
	const char *bad[] = {"tool", "User", "Assistant", "", " user", "system "};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		sk_error_clear();
		CHECK(sk_role_parse(bad[i], &r) == -1);
		CHECK_MSG(strstr(sk_error(), "unknown role") != NULL, "%s", sk_error());
	}
	CHECK(sk_role_parse(NULL, &r) == -1);
	CHECK(!strcmp(sk_role_name(SK_CHAT_ASSISTANT), "assistant"));
}

static size_t put_utf8(char *o, uint32_t c)
{
	if (c < 0x80) return o[0] = (char)c, 1;
	if (c < 0x800) return o[0] = (char)(0xc0 | c >> 6), o[1] = (char)(0x80 | (c & 0x3f)), 2;
	if (c < 0x10000)
		return o[0] = (char)(0xe0 | c >> 12), o[1] = (char)(0x80 | ((c >> 6) & 0x3f)),
		       o[2] = (char)(0x80 | (c & 0x3f)), 3;
	return o[0] = (char)(0xf0 | c >> 18), o[1] = (char)(0x80 | ((c >> 12) & 0x3f)),
	       o[2] = (char)(0x80 | ((c >> 6) & 0x3f)), o[3] = (char)(0x80 | (c & 0x3f)), 4;
}

/* Every code point: stripped on both sides exactly when Python strips it. */
TEST(trim_matches_python_strip)
{
	static uint8_t space[0x110000];
	size_t i;
	json_t *v;
	json_array_foreach(g_pyspace, i, v) space[json_integer_value(v)] = 1;
	size_t wrong = 0, nspace = 0;
	for (uint32_t c = 1; c < 0x110000; c++) {
		if (c >= 0xd800 && c <= 0xdfff) continue;
		char s[16];
		size_t k = put_utf8(s, c), n = 0;
		s[k] = 'x';
		n = put_utf8(s + k + 1, c);
		size_t len = k + 1 + n, tl;
		const char *t = sk_chat_trim(s, len, &tl);
		int stripped = tl == 1 && t == s + k && *t == 'x';
		int kept = tl == len && t == s;
		nspace += space[c];
		if (space[c] ? !stripped : !kept) {
			if (wrong++ < 5) fprintf(stderr, "  U+%04X trimmed wrongly\n", (unsigned)c);
		}
	}
	CHECK_EQ_INT(wrong, 0);
	CHECK_EQ_INT(nspace, 29);
	size_t tl;
	const char *t = sk_chat_trim(" \t\n\xc2\xa0", 5, &tl);
	CHECK_EQ_INT(tl, 0);
	(void)t;
	/* ZWNJ (U+200C) is not whitespace to Python: kept. */
	t = sk_chat_trim(" \xe2\x80\x8c" "a\xe2\x80\x8c ", 9, &tl);
	CHECK_EQ_INT(tl, 7);
	CHECK(!memcmp(t, "\xe2\x80\x8c", 3));
}

TEST(utf8_validation)
{
	CHECK(sk_chat_utf8_valid("\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85", 8));
	CHECK(sk_chat_utf8_valid("\xf0\x9f\x99\x82", 4));
	CHECK(!sk_chat_utf8_valid("\xd8", 1));           /* truncated */
	CHECK(!sk_chat_utf8_valid("\xc0\xaf", 2));       /* overlong */
	CHECK(!sk_chat_utf8_valid("\xed\xa0\x80", 3));   /* surrogate */
	CHECK(!sk_chat_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	CHECK(!sk_chat_utf8_valid("\xff", 1));
	sk_chat_msg m[1] = {{SK_CHAT_USER, "ok \xd8 no"}};
	char *s = NULL;
	CHECK(sk_chat_render_text(m, 1, 0, &s, NULL) == -1);
	CHECK_MSG(strstr(sk_error(), "message 1: content is not valid UTF-8") != NULL, "%s", sk_error());
	free(s);
}

TEST(text_matches_reference)
{
	size_t checked = 0;
	for (size_t i = 0; i < g_nrefs; i++) {
		conv *c = find_conv(g_refs[i].name);
		CHECK_MSG(c != NULL, "%s", g_refs[i].name);
		if (!c) continue;
		char *s = NULL;
		size_t len = 0;
		int rc = sk_chat_render_text(c->msgs, c->n, g_refs[i].gen, &s, &len);
		CHECK_MSG(rc == 0, "%s: %s", c->name, sk_error());
		if (rc) continue;
		CHECK_MSG(len == strlen(g_refs[i].text) && !strcmp(s, g_refs[i].text), "%s (gen=%d): got [%s]", c->name,
		          g_refs[i].gen, s);
		checked++;
		free(s);
	}
	CHECK(checked >= 60);
}

/* Spans tile the text, alternate labels, and the RESPONSE ones are exactly
 * Python's content.strip() + "<end_of_turn>" of each assistant turn. */
TEST(spans_cover_text_and_hold_responses)
{
	for (size_t i = 0; i < g_nrefs; i++) {
		conv *c = find_conv(g_refs[i].name);
		if (!c) continue;
		char *s = NULL;
		size_t len = 0, ns = 0, pos = 0, nresp = 0;
		sk_chat_span *sp = NULL;
		if (sk_chat_render_spans(c->msgs, c->n, g_refs[i].gen, &s, &len, &sp, &ns)) {
			CHECK_MSG(0, "%s: %s", c->name, sk_error());
			continue;
		}
		CHECK(ns >= 1 && sp[0].label == SK_CHAT_LABEL_PROMPT && sp[ns - 1].label == SK_CHAT_LABEL_PROMPT);
		for (size_t k = 0; k < ns; k++) {
			CHECK(sp[k].start == pos && sp[k].end > sp[k].start);
			if (k) CHECK(sp[k].label != sp[k - 1].label);
			pos = sp[k].end;
			if (sp[k].label != SK_CHAT_LABEL_RESPONSE) continue;
			const char *want = json_string_value(json_array_get(g_refs[i].responses, nresp++));
			CHECK_MSG(want && strlen(want) == sp[k].end - sp[k].start &&
			              !memcmp(s + sp[k].start, want, sp[k].end - sp[k].start),
			          "%s: response %zu: [%.*s]", c->name, nresp - 1, (int)(sp[k].end - sp[k].start),
			          s + sp[k].start);
		}
		CHECK_EQ_INT(pos, len);
		CHECK_EQ_INT(nresp, json_array_size(g_refs[i].responses));
		CHECK(!strcmp(s, g_refs[i].text));
		free(s);
		free(sp);
	}
}

TEST(errors_name_the_message)
{
	size_t checked = 0;
	for (size_t i = 0; i < g_nconvs; i++) {
		conv *c = &g_convs[i];
		if (!c->expect_error) continue;
		checked++;
		if (c->role_error[0]) {
			CHECK_MSG(strstr(c->role_error, c->expect_error) != NULL, "%s: %s", c->name, c->role_error);
			continue;
		}
		sk_error_clear();
		char *s = NULL;
		CHECK_MSG(sk_chat_render_text(c->msgs, c->n, 1, &s, NULL) == -1, "%s rendered", c->name);
		CHECK_MSG(strstr(sk_error(), c->expect_error) != NULL, "%s: [%s]", c->name, sk_error());
		CHECK(sk_chat_validate(c->msgs, c->n) == -1);
		free(s);
	}
	CHECK(checked >= 8);
	CHECK(sk_chat_validate(NULL, 0) == -1);
	sk_chat_msg m[2] = {{SK_CHAT_USER, NULL}, {SK_CHAT_ASSISTANT, "x"}};
	CHECK(sk_chat_validate(m, 2) == -1 && strstr(sk_error(), "message 1: no content"));
	m[0].content = "x";
	m[1].role = (sk_chat_role)7;
	CHECK(sk_chat_validate(m, 2) == -1 && strstr(sk_error(), "message 2: invalid role"));
}

/* ---- with the tokenizer ---- */

#define NEED_TOKENIZER()                                                  \
	do {                                                              \
		if (g_tok_absent) return;                                 \
		CHECK_MSG(g_tok != NULL, "tokenizer did not load");       \
		if (!g_tok) return;                                       \
	} while (0)

TEST(ids_match_reference)
{
	NEED_TOKENIZER();
	size_t checked = 0, total = 0;
	for (size_t i = 0; i < g_nrefs; i++) {
		conv *c = find_conv(g_refs[i].name);
		if (!c) continue;
		sk_ids ids = {0};
		sk_chat_labels lab = {0};
		int rc = sk_chat_render(g_tok, c->msgs, c->n, g_refs[i].gen, &ids, &lab);
		CHECK_MSG(rc == 0, "%s: %s", c->name, sk_error());
		size_t n = json_array_size(g_refs[i].ids), bad = n;
		if (rc == 0 && ids.n == n) {
			bad = 0;
			for (size_t k = 0; k < n; k++)
				bad += ids.v[k] != (int32_t)json_integer_value(json_array_get(g_refs[i].ids, k));
		}
		CHECK_MSG(bad == 0, "%s (gen=%d): %zu ids vs %zu, %zu differ", c->name, g_refs[i].gen, ids.n, n, bad);
		CHECK_EQ_INT(lab.n, ids.n);
		checked += bad == 0;
		total += n;
		sk_ids_free(&ids);
		sk_chat_labels_free(&lab);
	}
	printf("# %zu/%zu renders identical to HF, %zu ids\n", checked, g_nrefs, total);
	CHECK_EQ_INT(checked, g_nrefs);
}

/* The RESPONSE tokens, taken in runs, decode to each trimmed assistant
 * content followed by "<end_of_turn>"; everything else is PROMPT. */
TEST(response_labels_decode_to_assistant_turns)
{
	NEED_TOKENIZER();
	int32_t bos = sk_tokenizer_find(g_tok, "<bos>"), eot = sk_tokenizer_find(g_tok, "<end_of_turn>");
	int32_t sot = sk_tokenizer_find(g_tok, "<start_of_turn>"), nl = sk_tokenizer_find(g_tok, "\n");
	CHECK(bos >= 0 && eot >= 0 && sot >= 0 && nl >= 0);
	for (size_t i = 0; i < g_nrefs; i++) {
		conv *c = find_conv(g_refs[i].name);
		if (!c) continue;
		sk_ids ids = {0};
		sk_chat_labels lab = {0};
		if (sk_chat_render(g_tok, c->msgs, c->n, g_refs[i].gen, &ids, &lab)) {
			CHECK_MSG(0, "%s: %s", c->name, sk_error());
			continue;
		}
		CHECK(ids.n > 0 && ids.v[0] == bos && lab.v[0] == SK_CHAT_LABEL_PROMPT);
		size_t nresp = 0;
		for (size_t k = 0; k < ids.n;) {
			CHECK(lab.v[k] == SK_CHAT_LABEL_PROMPT || lab.v[k] == SK_CHAT_LABEL_RESPONSE);
			if (lab.v[k] != SK_CHAT_LABEL_RESPONSE) {
				k++;
				continue;
			}
			size_t e = k;
			while (e < ids.n && lab.v[e] == SK_CHAT_LABEL_RESPONSE) e++;
			/* Each run is preceded by "<start_of_turn>model\n" and followed by "\n". */
			CHECK(k >= 3 && ids.v[k - 1] == nl && ids.v[k - 3] == sot);
			CHECK(ids.v[e - 1] == eot);
			CHECK(e < ids.n && ids.v[e] == nl);
			char *txt = NULL;
			size_t tl = 0;
			CHECK(sk_tokenizer_decode(g_tok, ids.v + k, e - k, 0, &txt, &tl) == 0);
			const char *want = json_string_value(json_array_get(g_refs[i].responses, nresp));
			CHECK_MSG(txt && want && !strcmp(txt, want), "%s: response %zu: [%s] vs [%s]", c->name, nresp,
			          txt ? txt : "", want ? want : "");
			free(txt);
			nresp++;
			k = e;
		}
		CHECK_EQ_INT(nresp, json_array_size(g_refs[i].responses));
		/* The generation prompt is PROMPT and ends the ids. */
		if (g_refs[i].gen) CHECK(ids.n >= 3 && ids.v[ids.n - 1] == nl && lab.v[ids.n - 1] == 0 && lab.v[ids.n - 3] == 0);
		sk_ids_free(&ids);
		sk_chat_labels_free(&lab);
	}
}

/* A failed render leaves what the caller had; a good one appends. */
TEST(render_appends_and_restores)
{
	NEED_TOKENIZER();
	sk_ids ids = {0};
	sk_chat_labels lab = {0};
	sk_ids_push(&ids, 42);
	sk_chat_labels_push(&lab, 7);
	sk_chat_msg bad[2] = {{SK_CHAT_USER, "a"}, {SK_CHAT_USER, "b"}};
	CHECK(sk_chat_render(g_tok, bad, 2, 1, &ids, &lab) == -1);
	CHECK_MSG(strstr(sk_error(), "message 2: roles must alternate") != NULL, "%s", sk_error());
	CHECK_EQ_INT(ids.n, 1);
	CHECK_EQ_INT(lab.n, 1);
	sk_chat_msg good[2] = {{SK_CHAT_USER, "سلام"}, {SK_CHAT_ASSISTANT, "درود"}};
	CHECK(sk_chat_render(g_tok, good, 2, 0, &ids, &lab) == 0);
	CHECK(ids.n > 5 && ids.v[0] == 42 && ids.v[1] == sk_tokenizer_find(g_tok, "<bos>"));
	CHECK_EQ_INT(lab.n, ids.n);
	CHECK(lab.v[0] == 7);
	/* labels may be omitted */
	size_t n = ids.n;
	CHECK(sk_chat_render(g_tok, good, 2, 1, &ids, NULL) == 0 && ids.n > 2 * n - 2);
	sk_ids_free(&ids);
	sk_chat_labels_free(&lab);
}

int main(void)
{
	load_fixtures();
	load_tokenizer();
	RUN(fixtures_loaded);
	RUN(role_parse);
	RUN(trim_matches_python_strip);
	RUN(utf8_validation);
	RUN(text_matches_reference);
	RUN(spans_cover_text_and_hold_responses);
	RUN(errors_name_the_message);
	RUN(ids_match_reference);
	RUN(response_labels_decode_to_assistant_turns);
	RUN(render_appends_and_restores);
	for (size_t i = 0; i < g_nconvs; i++) free(g_convs[i].msgs);
	json_decref(g_convs_json);
	json_decref(g_refs_all);
	sk_tokenizer_free(g_tok);
	TEST_EXIT();
}
