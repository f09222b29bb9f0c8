#include "engine/paths.h"

#include <stdio.h>
#include <stdlib.h>

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
