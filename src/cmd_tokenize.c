/* `sokhan tokenize` and `sokhan detokenize`: text to token ids and back with
 * a model's tokenizer (tokenizer.json, a directory holding one, or a GGUF). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/i18n.h"
#include "engine/text/tokenizer.h"
#include "src/cli.h"
#include "src/commands.h"

#define SK_STDIN_MAX ((size_t)256 << 20)

static const sk_command_help tokenize_help = {
	"tokenize",
	"[--model PATH] [--bos] [--json] TEXT",
	N_("Print the token ids of TEXT ('-' reads standard input), separated by spaces."),
	N_("  --bos               put <bos> first\n"
	   "  --json              print a JSON array"),
	SK_CO_MODEL | SK_CO_VERBOSITY,
};

static const sk_command_help detokenize_help = {
	"detokenize",
	"[--model PATH] [--skip-special] [-n] ID...",
	N_("Print the text of token ids (given as arguments, or '-' to read them from standard input)."),
	N_("  --skip-special      leave out special tokens such as <bos>\n"
	   "  -n, --no-newline    do not end the text with a newline"),
	SK_CO_MODEL | SK_CO_VERBOSITY,
};

enum { OPT_BOS = 3000, OPT_JSON, OPT_SKIP_SPECIAL, OPT_NO_NEWLINE };

typedef struct {
	int bos, json, skip_special, no_newline;
} sk_tok_opts;

static int on_opt(void *ctx, int opt, const char *arg)
{
	(void)arg;
	sk_tok_opts *o = ctx;
	switch (opt) {
	case OPT_BOS: o->bos = 1; return 0;
	case OPT_JSON: o->json = 1; return 0;
	case OPT_SKIP_SPECIAL: o->skip_special = 1; return 0;
	case 'n':
	case OPT_NO_NEWLINE: o->no_newline = 1; return 0;
	}
	return SK_EXIT_USAGE;
}

static int read_stdin(char **data, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	if (!buf)
		return sk_cli_error("%s", _("out of memory"));
	for (;;) {
		if (n + 1 >= cap) { /* room for the NUL */
			if (cap >= SK_STDIN_MAX) {
				free(buf);
				return sk_cli_error(_("standard input is larger than %zu bytes"), SK_STDIN_MAX);
			}
			char *b = realloc(buf, cap * 2);
			if (!b) {
				free(buf);
				return sk_cli_error("%s", _("out of memory"));
			}
			buf = b;
			cap *= 2;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, stdin);
		n += r;
		if (r == 0) {
			if (ferror(stdin)) {
				free(buf);
				return sk_cli_error(_("cannot read standard input: %s"), strerror(errno));
			}
			break;
		}
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return 0;
}

static sk_tokenizer *open_tokenizer(sk_common_opts *co, int *rc)
{
	if ((*rc = sk_cli_model_or_default(co)) != 0)
		return NULL;
	sk_tokenizer *t = sk_tokenizer_open(co->model);
	if (!t)
		*rc = sk_cli_fail();
	return t;
}

int sk_cmd_tokenize(int argc, char **argv)
{
	static const struct option own[] = {
		{ "bos", no_argument, NULL, OPT_BOS },
		{ "json", no_argument, NULL, OPT_JSON },
		{ NULL, 0, NULL, 0 },
	};
	sk_tok_opts o = { 0 };
	sk_common_opts co;
	int first;
	int rc = sk_cli_parse(argc, argv, &tokenize_help, own, "", on_opt, &o, &co, &first);
	if (rc == 1)
		return SK_EXIT_OK;
	if (rc)
		return SK_EXIT_USAGE;
	if (argc - first != 1)
		return sk_cli_usage(&tokenize_help, "%s", argc - first < 1 ? _("no TEXT given") : _("give one TEXT (quote it)"));
	rc = 0;
	sk_tokenizer *t = open_tokenizer(&co, &rc);
	if (!t)
		return rc;
	char *text = NULL;
	size_t len;
	if (!strcmp(argv[first], "-")) {
		if (read_stdin(&text, &len) != 0) {
			sk_tokenizer_free(t);
			return SK_EXIT_ERROR;
		}
	} else {
		len = strlen(argv[first]);
	}
	sk_ids ids = { 0 };
	if (sk_tokenizer_encode(t, text ? text : argv[first], len, o.bos, &ids) != 0) {
		rc = sk_cli_fail();
	} else {
		fputs(o.json ? "[" : "", stdout);
		for (size_t i = 0; i < ids.n; i++)
			printf("%s%d", i ? (o.json ? ", " : " ") : "", ids.v[i]);
		fputs(o.json ? "]\n" : "\n", stdout);
		if (fflush(stdout) != 0)
			rc = sk_cli_error(_("cannot write the output: %s"), strerror(errno));
	}
	sk_ids_free(&ids);
	free(text);
	sk_tokenizer_free(t);
	return rc;
}

/* Ids from text: decimal numbers separated by spaces, commas, or inside a
 * JSON array. Returns 0, or 2 after a usage error. */
static int parse_ids(const sk_command_help *h, const char *s, sk_ids *ids)
{
	const char *p = s;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',' || *p == '[' || *p == ']')
			p++;
		if (!*p)
			return 0;
		char *end;
		errno = 0;
		long long v = strtoll(p, &end, 10);
		if (end == p || errno || v < 0 || v > INT32_MAX ||
		    (*end && !strchr(" \t\n\r,[]", *end))) {
			int n = (int)strcspn(p, " \t\n\r,[]");
			return sk_cli_usage(h, _("'%.*s' is not a token id"), n > 40 ? 40 : n, p);
		}
		if (sk_ids_push(ids, (int32_t)v) != 0)
			return sk_cli_fail();
		p = end;
	}
}

int sk_cmd_detokenize(int argc, char **argv)
{
	static const struct option own[] = {
		{ "skip-special", no_argument, NULL, OPT_SKIP_SPECIAL },
		{ "no-newline", no_argument, NULL, OPT_NO_NEWLINE },
		{ NULL, 0, NULL, 0 },
	};
	sk_tok_opts o = { 0 };
	sk_common_opts co;
	int first;
	int rc = sk_cli_parse(argc, argv, &detokenize_help, own, "n", on_opt, &o, &co, &first);
	if (rc == 1)
		return SK_EXIT_OK;
	if (rc)
		return SK_EXIT_USAGE;
	if (argc - first < 1)
		return sk_cli_usage(&detokenize_help, "%s", _("no token ids given"));
	sk_ids ids = { 0 };
	for (int i = first; i < argc; i++) {
		if (!strcmp(argv[i], "-")) {
			char *text;
			size_t len;
			if (read_stdin(&text, &len) != 0) {
				sk_ids_free(&ids);
				return SK_EXIT_ERROR;
			}
			if (memchr(text, '\0', len))
				rc = sk_cli_usage(&detokenize_help, "%s", _("standard input holds a NUL byte"));
			else
				rc = parse_ids(&detokenize_help, text, &ids);
			free(text);
		} else {
			rc = parse_ids(&detokenize_help, argv[i], &ids);
		}
		if (rc) {
			sk_ids_free(&ids);
			return rc;
		}
	}
	sk_tokenizer *t = open_tokenizer(&co, &rc);
	if (!t) {
		sk_ids_free(&ids);
		return rc;
	}
	char *out = NULL;
	size_t len = 0;
	if (sk_tokenizer_decode(t, ids.v, ids.n, o.skip_special, &out, &len) != 0) {
		rc = sk_cli_fail();
	} else {
		fwrite(out, 1, len, stdout);
		if (!o.no_newline)
			fputc('\n', stdout);
		if (fflush(stdout) != 0)
			rc = sk_cli_error(_("cannot write the output: %s"), strerror(errno));
	}
	free(out);
	sk_ids_free(&ids);
	sk_tokenizer_free(t);
	return rc;
}
