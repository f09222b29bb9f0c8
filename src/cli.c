#include "src/cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include "engine/format/files.h"
#include "engine/i18n.h"
#include "engine/paths.h"
#include "ui/bidi.h"

/* Long-only option codes of the common options, out of the range of
 * characters so they never collide with a command's short options. */
enum {
	OPT_MODEL = 1000, OPT_ADAPTER, OPT_DEVICE, OPT_QUANT, OPT_THREADS, OPT_SEED,
	OPT_VERBOSE, OPT_QUIET, OPT_GREEDY, OPT_TEMP, OPT_TOP_K, OPT_TOP_P, OPT_MIN_P, OPT_REPEAT,
	OPT_HELP
};

static const struct {
	struct option opt;
	unsigned mask;
	const char *help;
} sk_common_table[] = {
	{ { "model", required_argument, NULL, OPT_MODEL }, SK_CO_MODEL,
	  N_("  --model PATH        model: HF directory, .safetensors, .gguf, or tokenizer directory") },
	{ { "adapter", required_argument, NULL, OPT_ADAPTER }, SK_CO_ADAPTER,
	  N_("  --adapter DIR       LoRA adapter directory (PEFT layout)") },
	{ { "device", required_argument, NULL, OPT_DEVICE }, SK_CO_DEVICE,
	  N_("  --device cpu|cuda|auto   compute backend (default: auto)") },
	{ { "quant", required_argument, NULL, OPT_QUANT }, SK_CO_QUANT,
	  N_("  --quant none|nf4    quantize the base weights at load (default: none)") },
	{ { "threads", required_argument, NULL, OPT_THREADS }, SK_CO_THREADS,
	  N_("  --threads N         CPU threads (default: one per core)") },
	{ { "greedy", no_argument, NULL, OPT_GREEDY }, SK_CO_SAMPLING,
	  N_("  --greedy            always take the most likely token") },
	{ { "temp", required_argument, NULL, OPT_TEMP }, SK_CO_SAMPLING,
	  N_("  --temp T            temperature (default: 1; 0 = greedy)") },
	{ { "temperature", required_argument, NULL, OPT_TEMP }, SK_CO_SAMPLING, NULL },
	{ { "top-k", required_argument, NULL, OPT_TOP_K }, SK_CO_SAMPLING,
	  N_("  --top-k K           keep the K most likely tokens (default: 64; 0 = off)") },
	{ { "top-p", required_argument, NULL, OPT_TOP_P }, SK_CO_SAMPLING,
	  N_("  --top-p P           keep the fewest tokens whose probability reaches P (default: 0.95; 1 = off)") },
	{ { "min-p", required_argument, NULL, OPT_MIN_P }, SK_CO_SAMPLING,
	  N_("  --min-p P           drop tokens less likely than P times the most likely (default: 0 = off)") },
	{ { "repeat-penalty", required_argument, NULL, OPT_REPEAT }, SK_CO_SAMPLING,
	  N_("  --repeat-penalty R  penalize tokens already in the sequence (default: 1 = off)") },
	{ { "seed", required_argument, NULL, OPT_SEED }, SK_CO_SEED,
	  N_("  --seed N            random seed (default: 3407)") },
	{ { "verbose", no_argument, NULL, OPT_VERBOSE }, SK_CO_VERBOSITY,
	  N_("  -v, --verbose       more messages on stderr") },
	{ { "quiet", no_argument, NULL, OPT_QUIET }, SK_CO_VERBOSITY,
	  N_("  -q, --quiet         only errors on stderr") },
};
#define SK_NCOMMON (sizeof sk_common_table / sizeof sk_common_table[0])

void sk_cli_print_help(const sk_command_help *h)
{
	printf(_("Usage: sokhan %s %s\n"), h->name, h->args ? h->args : "");
	if (h->summary)
		printf("%s\n", _(h->summary));
	printf("\n%s\n", _("Options:"));
	if (h->options && *h->options)
		printf("%s\n", _(h->options));
	for (size_t i = 0; i < SK_NCOMMON; i++)
		if ((h->common & sk_common_table[i].mask) && sk_common_table[i].help)
			printf("%s\n", _(sk_common_table[i].help));
	printf("%s\n", _("  -h, --help          show this help and exit"));
}

int sk_cli_usage(const sk_command_help *h, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "sokhan %s: ", h->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	fprintf(stderr, _("Usage: sokhan %s %s\n"), h->name, h->args ? h->args : "");
	fprintf(stderr, _("Try 'sokhan %s --help' for more information.\n"), h->name);
	return SK_EXIT_USAGE;
}

int sk_cli_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s", _("sokhan: error: "));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return SK_EXIT_ERROR;
}

int sk_cli_fail(void)
{
	const char *e = sk_error();
	return sk_cli_error("%s", *e ? e : _("unknown error"));
}

void sk_cli_note(const sk_common_opts *co, int level, const char *fmt, ...)
{
	if (co && co->verbosity < level)
		return;
	if (co && co->verbosity < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int sk_cli_parse_int(const sk_command_help *h, const char *opt, const char *arg, long long min,
                     long long max, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(arg, &end, 10);
	if (errno || end == arg || *end || v < min || v > max)
		return sk_cli_usage(h, _("--%s: '%s' is not an integer in [%lld, %lld]"), opt, arg, min, max);
	*out = v;
	return 0;
}

int sk_cli_parse_float(const sk_command_help *h, const char *opt, const char *arg, double min,
                       double max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(arg, &end);
	if (errno || end == arg || *end || !isfinite(v) || v < min || v > max)
		return sk_cli_usage(h, _("--%s: '%s' is not a number in [%g, %g]"), opt, arg, min, max);
	*out = v;
	return 0;
}

/* The one parser of the sampling options (chat, generate, tui). */
static int sk_parse_sampling(const sk_command_help *h, int code, const char *arg, sk_sampling *s)
{
	double v;
	long long k;
	switch (code) {
	case OPT_TEMP:
		if (sk_cli_parse_float(h, "temp", arg, 0, 100, &v))
			return SK_EXIT_USAGE;
		s->temperature = (float)v; /* 0: the sampler takes the most likely token */
		return 0;
	case OPT_TOP_K:
		if (sk_cli_parse_int(h, "top-k", arg, 0, 1 << 30, &k))
			return SK_EXIT_USAGE;
		s->top_k = (int)k;
		return 0;
	case OPT_TOP_P:
		if (sk_cli_parse_float(h, "top-p", arg, 0, 1, &v))
			return SK_EXIT_USAGE;
		if (v <= 0)
			return sk_cli_usage(h, "%s", _("--top-p must be above 0"));
		s->top_p = (float)v;
		return 0;
	case OPT_MIN_P:
		if (sk_cli_parse_float(h, "min-p", arg, 0, 1, &v))
			return SK_EXIT_USAGE;
		s->min_p = (float)v;
		return 0;
	case OPT_REPEAT:
		if (sk_cli_parse_float(h, "repeat-penalty", arg, 0, 100, &v))
			return SK_EXIT_USAGE;
		if (v <= 0)
			return sk_cli_usage(h, "%s", _("--repeat-penalty must be above 0"));
		s->repeat_penalty = (float)v;
		return 0;
	}
	return SK_EXIT_USAGE;
}

static int sk_parse_common(const sk_command_help *h, int code, const char *arg, sk_common_opts *co)
{
	long long v;
	switch (code) {
	case OPT_GREEDY: co->sampling.greedy = 1; return 0;
	case OPT_TEMP:
	case OPT_TOP_K:
	case OPT_TOP_P:
	case OPT_MIN_P:
	case OPT_REPEAT:
		co->sampling_set = 1;
		return sk_parse_sampling(h, code, arg, &co->sampling);
	case OPT_MODEL: co->model = arg; return 0;
	case OPT_ADAPTER: co->adapter = arg; return 0;
	case OPT_DEVICE:
		if (!strcmp(arg, "cpu")) co->device = SK_DEVICE_CPU;
		else if (!strcmp(arg, "cuda")) co->device = SK_DEVICE_CUDA;
		else if (!strcmp(arg, "auto")) co->device = SK_DEVICE_AUTO;
		else return sk_cli_usage(h, _("--device: '%s' is not one of cpu, cuda, auto"), arg);
		return 0;
	case OPT_QUANT:
		if (!strcmp(arg, "none")) co->quant = SK_QUANT_NONE;
		else if (!strcmp(arg, "nf4")) co->quant = SK_QUANT_NF4;
		else return sk_cli_usage(h, _("--quant: '%s' is not one of none, nf4"), arg);
		return 0;
	case OPT_THREADS:
		if (sk_cli_parse_int(h, "threads", arg, 1, 1024, &v)) return SK_EXIT_USAGE;
		co->threads = (int)v;
		return 0;
	case OPT_SEED: {
		char *end;
		errno = 0;
		if (arg[0] == '-' || arg[0] == '\0')
			return sk_cli_usage(h, _("--seed: '%s' is not a non-negative integer"), arg);
		unsigned long long s = strtoull(arg, &end, 10);
		if (errno || *end)
			return sk_cli_usage(h, _("--seed: '%s' is not a non-negative integer"), arg);
		co->seed = s;
		return 0;
	}
	case OPT_VERBOSE: co->verbosity = 1; return 0;
	case OPT_QUIET: co->verbosity = -1; return 0;
	}
	return SK_EXIT_USAGE;
}

int sk_cli_parse(int argc, char **argv, const sk_command_help *h, const struct option *own,
                 const char *own_short, sk_cli_opt_fn on_opt, void *ctx, sk_common_opts *co,
                 int *first_arg)
{
	memset(co, 0, sizeof *co);
	co->device = SK_DEVICE_AUTO;
	sk_sampling_defaults(&co->sampling);
	co->seed = co->sampling.seed;

	struct option longopts[64];
	size_t n = 0;
	for (size_t i = 0; i < SK_NCOMMON; i++)
		if (h->common & sk_common_table[i].mask)
			longopts[n++] = sk_common_table[i].opt;
	for (const struct option *o = own; o && o->name && n < 62; o++)
		longopts[n++] = *o;
	longopts[n++] = (struct option){ "help", no_argument, NULL, OPT_HELP };
	longopts[n] = (struct option){ 0, 0, 0, 0 };

	/* GNU permutation is kept so options may follow positional arguments;
	 * "--" still ends option parsing. A leading ':' reports missing values. */
	char shortopts[64];
	snprintf(shortopts, sizeof shortopts, ":h%s%s", (h->common & SK_CO_VERBOSITY) ? "vq" : "",
	         own_short ? own_short : "");

	opterr = 0;
	optind = 0; /* full re-initialisation of getopt */
	for (;;) {
		int li = -1;
		int c = getopt_long(argc, argv, shortopts, longopts, &li);
		if (c == -1)
			break;
		int rc;
		switch (c) {
		case 'h':
		case OPT_HELP:
			sk_cli_print_help(h);
			return 1;
		case 'v':
			if (h->common & SK_CO_VERBOSITY) { co->verbosity = 1; continue; }
			break;
		case 'q':
			if (h->common & SK_CO_VERBOSITY) { co->verbosity = -1; continue; }
			break;
		case '?':
			if (optopt && optopt < 256)
				return sk_cli_usage(h, _("unknown option '-%c'"), optopt);
			return sk_cli_usage(h, _("unknown option '%s'"), argv[optind - 1]);
		case ':':
			if (optopt && optopt < 256)
				return sk_cli_usage(h, _("option '-%c' needs a value"), optopt);
			return sk_cli_usage(h, _("option '%s' needs a value"), argv[optind - 1]);
		}
		if (c >= OPT_MODEL && c < OPT_HELP) {
			rc = sk_parse_common(h, c, optarg, co);
		} else if (on_opt) {
			rc = on_opt(ctx, c, optarg);
		} else {
			rc = sk_cli_usage(h, _("unknown option '%s'"), argv[optind - 1]);
		}
		if (rc)
			return SK_EXIT_USAGE;
	}
	if (co->sampling.greedy && co->sampling_set)
		return sk_cli_usage(h, "%s", _("--greedy cannot be combined with sampling options"));
	co->sampling.seed = co->seed;
	*first_arg = optind;
	return 0;
}

const char *sk_cli_pad(const char *label, int width)
{
	static char bufs[4][512];
	static int next;
	char *buf = bufs[next++ & 3];
	/* display width of the label: wcwidth per character, bytes when the
	 * text is not valid in the current locale */
	int cols = 0;
	mbstate_t st;
	memset(&st, 0, sizeof st);
	const char *p = label;
	size_t left = strlen(label);
	while (left > 0) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, p, left, &st);
		if (k == (size_t)-1 || k == (size_t)-2) {
			cols = (int)strlen(label);
			break;
		}
		if (k == 0)
			break;
		int w = wcwidth(wc);
		cols += w > 0 ? w : 0;
		p += k;
		left -= k;
	}
	int pad = width > cols ? width - cols : 0;
	snprintf(buf, sizeof bufs[0], "%s%*s", label, pad, "");
	return buf;
}

/* what data/fetch-model.sh downloads into the cache */
#define SK_DEFAULT_MODEL_FILE "gemma-3-270m-q4_k_m.gguf"

int sk_cli_default_model(char *buf, size_t cap)
{
	const char *env = getenv("SK_DEFAULT_MODEL");
	if (env && *env) {
		snprintf(buf, cap, "%s", env);
		return 0;
	}
	char dir[3800];
	if (sk_cache_dir("models", dir, sizeof dir))
		return -1;
	snprintf(buf, cap, "%s/%s", dir, SK_DEFAULT_MODEL_FILE);
	if (!sk_file_exists(buf))
		return sk_fail(_("no --model given, and the default model %s is missing: data/fetch-model.sh "
		                 "downloads it there, or give --model PATH"), buf);
	return 0;
}

int sk_cli_model_or_default(sk_common_opts *co)
{
	/* one model per run: a static buffer outlives every copy of co */
	static char path[4096];
	if (co->model)
		return 0;
	if (sk_cli_default_model(path, sizeof path))
		return sk_cli_fail();
	co->model = path;
	return 0;
}

static int sk_bidi_word(const char *s, int *app)
{
	if (strcmp(s, "app") && strcmp(s, "terminal"))
		return -1;
	*app = !strcmp(s, "app");
	return 0;
}

int sk_cli_parse_bidi(const sk_command_help *h, const char *arg, int *app)
{
	if (sk_bidi_word(arg, app))
		return sk_cli_usage(h, _("--bidi: '%s' is not one of app, terminal"), arg);
	return 0;
}

int sk_cli_env_bidi(const sk_command_help *h, int *app)
{
	const char *env = getenv("SOKHAN_BIDI");
	if (env && *env && sk_bidi_word(env, app))
		return sk_cli_usage(h, _("SOKHAN_BIDI: '%s' is not one of app, terminal"), env);
	return 0;
}

int sk_cli_parse_shape(const sk_command_help *h, const char *arg, sk_shape_mode *m)
{
	if (sk_shape_mode_parse(arg, m) != 0)
		return sk_cli_usage(h, _("--shape: '%s' is not one of auto, on, off"), arg);
	return 0;
}

sk_shape_mode sk_cli_env_shape(void)
{
	sk_shape_mode m = SK_SHAPE_AUTO;
	const char *env = getenv("SOKHAN_SHAPE");
	if (env && *env && sk_shape_mode_parse(env, &m) != 0)
		m = SK_SHAPE_AUTO;
	return m;
}

int sk_cli_ui_rtl(void)
{
	static const char *const vars[] = { "LC_ALL", "LC_MESSAGES", "LANG" };
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		const char *v = getenv(vars[i]);
		if (v && *v)
			return sk_bidi_locale_rtl(v);
	}
	return 0;
}
