/* `sokhan plot RUN_DIR [--out FILE.svg]`: the training chart of a run
 * (RUN_DIR/metrics.jsonl) as an SVG file, RUN_DIR/loss.svg by default. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/format/files.h"
#include "engine/i18n.h"
#include "engine/train/metrics.h"
#include "engine/train/svg_plot.h"
#include "src/cli.h"
#include "src/commands.h"

static const sk_command_help plot_help = {
	"plot",
	"RUN_DIR [--out FILE.svg]",
	N_("Draw the loss, learning rate and gradient norm of a training run (RUN_DIR/metrics.jsonl, or a "
	   "metrics file) as an SVG chart."),
	N_("  -o, --out FILE      where to write the chart (default: RUN_DIR/loss.svg)"),
	SK_CO_VERBOSITY,
};

enum { OPT_OUT = 'o' };

static int on_opt(void *ctx, int opt, const char *arg)
{
	if (opt == OPT_OUT) {
		*(const char **)ctx = arg;
		return 0;
	}
	return SK_EXIT_USAGE;
}

/* Last path component without trailing slashes, for the title. */
static void base_name(const char *path, char *buf, size_t cap)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	size_t b = n;
	while (b > 0 && path[b - 1] != '/')
		b--;
	size_t k = n - b < cap - 1 ? n - b : cap - 1;
	memcpy(buf, path + b, k);
	buf[k] = '\0';
}

int sk_cmd_plot(int argc, char **argv)
{
	static const struct option own[] = {
		{ "out", required_argument, NULL, OPT_OUT },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = NULL;
	sk_common_opts co;
	int first;
	int rc = sk_cli_parse(argc, argv, &plot_help, own, "o:", on_opt, &out, &co, &first);
	if (rc == 1)
		return SK_EXIT_OK;
	if (rc)
		return SK_EXIT_USAGE;
	if (argc - first != 1)
		return sk_cli_usage(&plot_help, "%s", argc - first < 1 ? _("which run? (RUN_DIR is missing)")
								   : _("only one RUN_DIR, please"));
	const char *run = argv[first];
	int is_dir = sk_is_dir(run);
	if (is_dir < 0)
		return sk_cli_error(_("%s: no such file or directory"), run);

	char *metrics = is_dir ? sk_path_join(run, SK_METRICS_FILE) : strdup(run);
	char *out_path = NULL;
	char title[512], name[256];
	if (is_dir) {
		base_name(run, name, sizeof name);
	} else {
		/* a metrics file: name the chart after its directory */
		char *dir = strdup(run);
		char *slash = dir ? strrchr(dir, '/') : NULL;
		if (slash)
			*slash = '\0';
		base_name(slash ? dir : ".", name, sizeof name);
		out_path = out ? NULL : sk_path_join(slash ? dir : ".", "loss.svg");
		free(dir);
	}
	if (!out_path)
		out_path = out ? strdup(out) : sk_path_join(run, "loss.svg");
	if (!metrics || !out_path) {
		free(metrics);
		free(out_path);
		return sk_cli_error("%s", _("out of memory"));
	}
	snprintf(title, sizeof title, _("Training run: %s"), name);

	sk_metrics_series s;
	if (sk_metrics_read(metrics, &s)) {
		free(metrics);
		free(out_path);
		return sk_cli_fail();
	}
	int status = SK_EXIT_OK;
	if (s.n == 0) {
		status = s.neval ? sk_cli_error(_("%s: only evaluation records, no training steps to plot"), metrics)
				 : sk_cli_error(_("%s: no training records (is the run started?)"), metrics);
		goto done;
	}
	if (s.bad_lines)
		sk_cli_note(&co, 0, ngettext("sokhan: warning: %s: %zu line is not a metrics record (skipped)",
					     "sokhan: warning: %s: %zu lines are not metrics records (skipped)",
					     s.bad_lines),
			    metrics, s.bad_lines);
	sk_plot_info info;
	size_t len;
	char *svg = sk_svg_plot_training(&s, title, &info, &len);
	if (!svg || sk_write_file_atomic(out_path, svg, len)) {
		free(svg);
		status = sk_cli_fail();
		goto done;
	}
	free(svg);
	if (info.skipped)
		sk_cli_note(&co, 0, ngettext("sokhan: warning: %zu non-finite value was left out of the chart",
					     "sokhan: warning: %zu non-finite values were left out of the chart",
					     info.skipped),
			    info.skipped);
	if (co.verbosity >= 0)
		printf(_("Wrote %s (%zu steps, %zu evaluations)\n"), out_path, s.n, s.neval);
done:
	sk_metrics_series_free(&s);
	free(metrics);
	free(out_path);
	return status;
}
