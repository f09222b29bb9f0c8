/* Terminal modes, suspend and signals. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ui/tui_curses.h"
#include "ui/tui_term.h"

static int sig_pipe[2] = { -1, -1 };
static int curses_on, bidi_sent;

static void raw_write(const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* Explicit bidi mode, LTR paragraphs, no arrow swapping; block cursor. */
static void bidi_enter(int bidi_app)
{
	if (bidi_app) {
		raw_write("\033[8l\033[1 k\033[?1243l");
		bidi_sent = 1;
	}
}

static void bidi_leave(void)
{
	if (bidi_sent) {
		raw_write("\033[8h\033[0 k\033[?1243h");
		bidi_sent = 0;
	}
}

void tui_term_restore(void)
{
	if (curses_on) {
		endwin();
		curses_on = 0;
	}
	bidi_leave();
}

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char c = (unsigned char)sig;
	if (sig_pipe[1] >= 0 && write(sig_pipe[1], &c, 1) < 0) {
		/* nothing to do: the pipe is full, a signal is already waiting */
	}
	errno = saved;
}

static void install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGTSTP, &sa, NULL);
	sigaction(SIGCONT, &sa, NULL);
}

int tui_term_signals(void)
{
	if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
		return -1;
	install_signals();
	return sig_pipe[0];
}

int tui_term_caught(unsigned char *s, int cap)
{
	ssize_t n = read(sig_pipe[0], s, (size_t)cap);
	return n > 0 ? (int)n : 0;
}

void tui_term_close(void)
{
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	sig_pipe[0] = sig_pipe[1] = -1;
}

int tui_term_start(int bidi_app)
{
	static int registered;
	if (!registered && atexit(tui_term_restore) == 0)
		registered = 1;
	/* The mode switch goes before curses' first clear (rtl-terminal.md §1.1). */
	bidi_enter(bidi_app);
	if (!getenv("ESCDELAY"))
		set_escdelay(25);
	if (!initscr()) {
		bidi_leave();
		return -1;
	}
	curses_on = 1;
	raw();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	return 0;
}

void tui_term_suspend(int bidi_app)
{
	tui_term_restore();
	/* SIGSTOP, not SIGTSTP: the kernel drops SIGTSTP for an orphaned
	 * process group (a TUI started by a script), SIGSTOP always stops. */
	raise(SIGSTOP);
	/* Continued. */
	install_signals();
	bidi_enter(bidi_app);
	refresh();
	curses_on = 1;
}
