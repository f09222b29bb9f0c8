/* `sokhan merge`: a LoRA adapter merged into the model's original weights,
 * written as a new Hugging Face checkpoint (engine/train/merge.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "engine/format/dtype.h"
#include "engine/i18n.h"
#include "engine/train/merge.h"
#include "src/cli.h"
#include "src/commands.h"

static const sk_command_help merge_help = {
	"merge",
	"--model PATH --adapter DIR --out DIR [--dtype bf16|f16|f32] [--max-shard-size 2GB] [--force]",
	N_("Merge a LoRA adapter into the model's weights and write a new Hugging Face checkpoint."),
	N_("  -o, --out DIR       the directory to write (it must not exist, unless --force)\n"
	   "  --dtype TYPE        bf16, f16 or f32 for the weights written (default: as stored);\n"
	   "                      the merge itself is computed in f32 and rounded once\n"
	   "  --max-shard-size N  largest safetensors shard, e.g. 2GB (default), 500MB, 4GiB\n"
	   "  --force             replace the output directory if it exists"),
	SK_CO_MODEL | SK_CO_ADAPTER | SK_CO_VERBOSITY,
};

enum { OPT_OUT = 3300, OPT_DTYPE, OPT_SHARD, OPT_FORCE };

typedef struct {
	const char *out;
	int dtype;
	uint64_t shard;
	int force;
} sk_merge_cli;

static int on_opt(void *ctx, int opt, const char *arg)
{
	sk_merge_cli *o = ctx;
	switch (opt) {
	case 'o':
	case OPT_OUT: o->out = arg; return 0;
	case OPT_FORCE: o->force = 1; return 0;
	case OPT_DTYPE:
		if (!strcasecmp(arg, "bf16") || !strcasecmp(arg, "bfloat16"))
			o->dtype = SK_DT_BF16;
		else if (!strcasecmp(arg, "f16") || !strcasecmp(arg, "fp16") || !strcasecmp(arg, "float16"))
			o->dtype = SK_DT_F16;
		else if (!strcasecmp(arg, "f32") || !strcasecmp(arg, "fp32") || !strcasecmp(arg, "float32"))
			o->dtype = SK_DT_F32;
		else
			return sk_cli_usage(&merge_help, _("--dtype: '%s' is not bf16, f16 or f32"), arg);
		return 0;
	case OPT_SHARD:
		if (sk_merge_parse_size(arg, &o->shard))
			return sk_cli_usage(&merge_help, _("--max-shard-size: '%s' is not a size such as 2GB or 500MB"),
			                    arg);
		return 0;
	}
	return SK_EXIT_USAGE;
}

typedef struct {
	const sk_common_opts *co;
	int tty;
	int last_shard;
	int last_pct;
} sk_merge_view;

/* A bar that redraws in place on a terminal; one line per shard otherwise. */
static void on_progress(void *ctx, int shard, int nshards, const char *name, uint64_t done, uint64_t total)
{
	sk_merge_view *v = ctx;
	if (v->co->verbosity < 0)
		return;
	int pct = total ? (int)(done * 100 / total) : 100;
	if (v->tty) {
		if (pct == v->last_pct && shard == v->last_shard)
			return;
		int w = 30, fill = pct * w / 100;
		char bar[32];
		for (int i = 0; i < w; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[w] = '\0';
		fprintf(stderr, "\r\033[K[%s] %3d%%  %s (%d/%d)", bar, pct, name, shard + 1, nshards);
	} else if (shard != v->last_shard) {
		fprintf(stderr, _("writing %s (%d/%d), %d%% done\n"), name, shard + 1, nshards, pct);
	}
	v->last_shard = shard;
	v->last_pct = pct;
}

static const char *size_text(char *buf, size_t cap, uint64_t b)
{
	if (b >= 1000000000ull)
		snprintf(buf, cap, "%.2f GB", (double)b / 1e9);
	else if (b >= 1000000ull)
		snprintf(buf, cap, "%.1f MB", (double)b / 1e6);
	else
		snprintf(buf, cap, "%.1f kB", (double)b / 1e3);
	return buf;
}

int sk_cmd_merge(int argc, char **argv)
{
	static const struct option own[] = {
		{ "out", required_argument, NULL, OPT_OUT },
		{ "dtype", required_argument, NULL, OPT_DTYPE },
		{ "max-shard-size", required_argument, NULL, OPT_SHARD },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ NULL, 0, NULL, 0 },
	};
	sk_merge_cli o = { .dtype = -1 };
	sk_common_opts co;
	int first;
	int rc = sk_cli_parse(argc, argv, &merge_help, own, "o:", on_opt, &o, &co, &first);
	if (rc == 1)
		return SK_EXIT_OK;
	if (rc)
		return SK_EXIT_USAGE;
	if (first < argc)
		return sk_cli_usage(&merge_help, _("unexpected argument '%s'"), argv[first]);
	/* no default here: the default model is a GGUF file, and the base must be
	 * the safetensors model the adapter was trained on */
	if (!co.model)
		return sk_cli_usage(&merge_help, "%s",
		                    _("--model PATH is required: the Hugging Face model the adapter was trained on"));
	if (!co.adapter)
		return sk_cli_usage(&merge_help, "%s", _("--adapter DIR is required"));
	if (!o.out)
		return sk_cli_usage(&merge_help, "%s", _("--out DIR is required"));

	sk_merge_view view = { &co, isatty(STDERR_FILENO), -1, -1 };
	sk_merge_opts mo = {
		.model = co.model, .adapter = co.adapter, .out = o.out, .dtype = o.dtype,
		.max_shard_size = o.shard, .force = o.force, .progress = on_progress, .progress_ctx = &view,
	};
	sk_merge_stats st;
	rc = sk_merge(&mo, &st);
	if (view.tty && view.last_shard >= 0 && co.verbosity >= 0)
		fputc('\n', stderr);
	if (rc)
		return sk_cli_fail();
	if (st.lora_ignored)
		sk_cli_note(&co, 0, _("note: %d adapter tensors were left out (k/v of KV-shared layers or "
		                      "vision/audio modules: they never run)"), (int)st.lora_ignored);
	if (st.overflow)
		sk_cli_note(&co, 0, _("warning: %" PRId64 " values exceed the range of %s and became infinite"),
		            st.overflow, sk_dtype_name(st.out_dtype));
	char sz[32];
	sk_cli_note(&co, 0, _("merged %zu weights (%s, from %s), copied %zu and converted %zu other tensors: "
	                      "%d shard(s), %s in %s"),
	            st.merged, sk_dtype_name(st.out_dtype), sk_dtype_name(st.in_dtype), st.copied, st.converted,
	            st.shards, size_text(sz, sizeof sz, st.bytes), o.out);
	return SK_EXIT_OK;
}
