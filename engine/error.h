/* Error reporting for the engine: a failing function records one message
 * ("FILE: what is wrong") in thread-local storage and returns -1 or NULL.
 * The caller that gives up prints it as "sokhan: error: MESSAGE". */
#ifndef SK_ERROR_H
#define SK_ERROR_H

#if defined(__GNUC__)
#define SK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SK_PRINTF(a, b)
#endif

/* Records a message; always returns -1 so callers can `return sk_fail(...)`. */
int sk_fail(const char *fmt, ...) SK_PRINTF(1, 2);
/* Prefixes the current message with "PREFIX: " (e.g. a file name); returns -1. */
int sk_fail_prefix(const char *prefix);
/* The last message of this thread ("" when none). */
const char *sk_error(void);
void sk_error_clear(void);

#endif
