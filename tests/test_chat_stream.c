/* src/chat_stream: what a terminal shows after a streamed answer, with the
 * in-place redraws (\r, ESC [ K) played back by a tiny screen model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/chat_stream.h"
#include "tests/test.h"

/* Plays back the output: returns the committed lines and the current one,
 * joined with '\n'. Only what chat_stream writes is understood. */
static char *play(const char *out)
{
	size_t n = strlen(out);
	char *screen = calloc(1, n + 2), *line = calloc(1, n + 1);
	size_t sl = 0, ll = 0;
	for (size_t i = 0; i < n; i++) {
		if (out[i] == '\r') {
			ll = 0; /* every \r here is followed by ESC [ K */
		} else if (!strncmp(out + i, "\033[K", 3)) {
			i += 2;
		} else if (out[i] == '\n') {
			memcpy(screen + sl, line, ll);
			sl += ll;
			screen[sl++] = '\n';
			ll = 0;
		} else {
			line[ll++] = out[i];
		}
	}
	memcpy(screen + sl, line, ll);
	screen[sl + ll] = '\0';
	free(line);
	return screen;
}

/* Code points of s reversed (the visual order of a purely RTL line). */
static void reverse_cps(const char *s, char *out)
{
	size_t n = strlen(s), o = 0;
	size_t i = n;
	while (i > 0) {
		size_t e = i;
		do
			i--;
		while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80);
		memcpy(out + o, s + i, e - i);
		o += e - i;
	}
	out[o] = '\0';
}

static char *stream(int app, int cols, const char *const *tokens, size_t n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	sk_chat_stream s;
	memset(&s, 0, sizeof s);
	sk_chat_stream_begin(&s, fp, app, 0, cols, 1);
	for (size_t i = 0; i < n; i++)
		CHECK(sk_chat_stream_write(&s, tokens[i], strlen(tokens[i])) == 0);
	CHECK(sk_chat_stream_end(&s) == 0);
	sk_chat_stream_free(&s);
	fclose(fp);
	return buf;
}

TEST(app_mode_wraps_and_reorders_each_line)
{
	/* one character per token, the worst case for redraws */
	const char *text = "سلام دنیا، حال شما خوب است؟\nhello";
	const char *tok[64];
	char pieces[64][8];
	size_t n = 0;
	for (const char *p = text; *p && n < 64;) {
		size_t k = 1;
		while (((unsigned char)p[k] & 0xC0) == 0x80)
			k++;
		memcpy(pieces[n], p, k);
		pieces[n][k] = '\0';
		tok[n] = pieces[n];
		n++;
		p += k;
	}
	char *out = stream(1, 11, tok, n);
	char *screen = play(out);
	char l1[64], l2[64], l3[64], want[256];
	reverse_cps("سلام دنیا،", l1);
	reverse_cps("حال شما", l2);
	reverse_cps("خوب است؟", l3);
	/* RTL lines right-aligned in 10 cells */
	snprintf(want, sizeof want, "%s\n   %s\n  %s\nhello\n", l1, l2, l3);
	CHECK_MSG(!strcmp(screen, want), "screen:\n%s\nwanted:\n%s", screen, want);
	free(screen);
	free(out);
}

TEST(app_mode_direction_follows_the_first_strong_letter)
{
	/* starts LTR ("GPT-4"), so the line stays left-aligned, and Persian
	 * words inside it read right to left */
	const char *tok[] = { "GPT", "-4 ", "آماده", " است" };
	char *out = stream(1, 40, tok, 4);
	char *screen = play(out);
	char a[64], want[128];
	reverse_cps("آماده است", a); /* one RTL run: the words swap too */
	snprintf(want, sizeof want, "GPT-4 %s\n", a);
	CHECK_MSG(!strcmp(screen, want), "screen: %s", screen);
	free(screen);
	free(out);
}

TEST(terminal_mode_is_logical_and_sanitized)
{
	/* ESC and the C1 control U+009B (CSI) go; U+00A0 stays */
	const char *tok[] = { "سلام", " \033[31mred", "\xc2\x9b" "1m\xc2\xa0", "\tx\n" };
	char *out = stream(0, 80, tok, 4);
	CHECK_MSG(!strcmp(out, "سلام [31mred1m\xc2\xa0" "\tx\n"), "%s", out);
	free(out);
	/* an empty answer still ends with a newline (one answer, one line) */
	char *e = stream(0, 80, NULL, 0);
	CHECK(!strcmp(e, "\n"));
	free(e);
	const char *nl[] = { "a\n" };
	char *f = stream(1, 80, nl, 1);
	char *screen = play(f);
	CHECK_MSG(!strcmp(screen, "a\n"), "%s", screen); /* no second newline */
	free(screen);
	free(f);
}

int main(void)
{
	RUN(app_mode_wraps_and_reorders_each_line);
	RUN(app_mode_direction_follows_the_first_strong_letter);
	RUN(terminal_mode_is_logical_and_sanitized);
	TEST_EXIT();
}
