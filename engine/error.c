#include "engine/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char sk_error_buf[1024];

int sk_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sk_error_buf, sizeof sk_error_buf, fmt, ap);
	va_end(ap);
	return -1;
}

int sk_fail_prefix(const char *prefix)
{
	char tmp[sizeof sk_error_buf];
	size_t n = strlen(prefix);
	if (n > sizeof tmp / 2)
		n = sizeof tmp / 2;
	memcpy(tmp, prefix, n);
	memcpy(tmp + n, ": ", 2);
	size_t rest = strnlen(sk_error_buf, sizeof tmp - n - 3);
	memcpy(tmp + n + 2, sk_error_buf, rest);
	tmp[n + 2 + rest] = '\0';
	memcpy(sk_error_buf, tmp, sizeof tmp);
	return -1;
}

const char *sk_error(void) { return sk_error_buf; }

void sk_error_clear(void) { sk_error_buf[0] = '\0'; }
