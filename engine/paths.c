#include "engine/paths.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/i18n.h"

static int sk_xdg_dir(const char *env, const char *home_rel, const char *sub, char *buf, size_t cap)
{
	const char *base = getenv(env);
	int n;
	/* XDG says relative values are invalid and must be ignored */
	if (base && base[0] == '/') {
		n = snprintf(buf, cap, "%s/sokhan%s%s", base, sub ? "/" : "", sub ? sub : "");
	} else {
		const char *home = getenv("HOME");
		if (!home || !*home)
			return sk_fail(_("neither %s nor HOME is set"), env);
		n = snprintf(buf, cap, "%s/%s/sokhan%s%s", home, home_rel, sub ? "/" : "", sub ? sub : "");
	}
	if (n < 0 || (size_t)n >= cap)
		return sk_fail(_("%s: path too long"), env);
	return sk_mkdirs(buf, 0755);
}

int sk_cache_dir(const char *sub, char *buf, size_t cap)
{
	return sk_xdg_dir("XDG_CACHE_HOME", ".cache", sub, buf, cap);
}

int sk_state_dir(const char *sub, char *buf, size_t cap)
{
	return sk_xdg_dir("XDG_STATE_HOME", ".local/state", sub, buf, cap);
}

#ifndef SK_PKGDATADIR
#error "SK_PKGDATADIR must name the installed data directory (configure passes $(pkgdatadir))"
#endif

int sk_data_path_in(const char *exe_dir, const char *pkgdatadir, const char *name, char *buf, size_t cap)
{
	int n;
	if (exe_dir) {
		n = snprintf(buf, cap, "%s/data/%s", exe_dir, name);
		if (n > 0 && (size_t)n < cap && access(buf, R_OK) == 0)
			return 0;
	}
	n = snprintf(buf, cap, "%s/%s", pkgdatadir, name);
	if (n > 0 && (size_t)n < cap && access(buf, R_OK) == 0)
		return 0;
	buf[0] = '\0';
	return sk_fail(_("%s: not found in %s/data nor in %s"), name, exe_dir ? exe_dir : "?", pkgdatadir);
}

int sk_data_path(const char *name, char *buf, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	const char *dir = NULL;
	if (n > 0) {
		exe[n] = '\0';
		dir = dirname(exe);
	}
	return sk_data_path_in(dir, SK_PKGDATADIR, name, buf, cap);
}
