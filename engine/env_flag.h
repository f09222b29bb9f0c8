/* A switch read from the environment: the SK_* variables that turn an
 * option of the training and benchmark paths on or off for a run. */
#ifndef SK_ENV_FLAG_H
#define SK_ENV_FLAG_H

#include <stdlib.h>
#include <string.h>

/* 1 when the variable is set to exactly "1". */
static inline int sk_env_on(const char *name)
{
	const char *v = getenv(name);
	return v && !strcmp(v, "1");
}

#endif
