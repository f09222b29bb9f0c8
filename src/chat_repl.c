/* Input loops of `sokhan chat`. */
#include "src/chat_repl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <termios.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/paths.h"
#include "ui/bidi.h"

#define SK_HISTORY_MAX 1000

static volatile sig_atomic_t sk_interactive;
static volatile sig_atomic_t sk_prompt_sigint;

static void on_sigint(int sig)
{
	if (sk_chat_generating) {
		sk_chat_interrupted = 1;
	} else if (sk_interactive) {
		sk_prompt_sigint = 1;
	} else {
		signal(sig, SIG_DFL);
		raise(sig);
	}
}

void sk_chat_signals(int interactive)
{
	sk_interactive = interactive;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	/* select() returns EINTR anyway; restarting keeps file reads of
	 * worker threads undisturbed */
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
}

int sk_chat_repl_pipe(sk_chat_session *s)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, stdin)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (memchr(line, '\0', (size_t)n)) {
			fprintf(stderr, "%s\n", _("sokhan: error: a line of the input holds a NUL byte"));
			s->failed = 1;
			continue;
		}
		if (sk_chat_handle_line(s, line))
			break;
	}
	free(line);
	return s->failed ? SK_EXIT_ERROR : SK_EXIT_OK;
}

/* readline's callback interface, so that Ctrl-C at the prompt can be
 * handled outside a signal handler. */
static char *sk_line;
static int sk_eof;

static void on_line(char *line)
{
	if (!line)
		sk_eof = 1;
	else
		sk_line = line;
}

static void clear_input_line(void)
{
	rl_callback_sigcleanup();
	rl_free_line_state();
	rl_replace_line("", 0);
	rl_crlf();
	rl_on_new_line();
	rl_redisplay();
}

/* In app mode, after Enter, show the line just typed again in visual order
 * (readline echoed it in logical order), when it holds right-to-left text
 * and fits on one screen line. */
static void reshow_input(const sk_chat_session *s, const char *prompt, const char *line)
{
	size_t len = strlen(line);
	/* the rule of a right-to-left UI says RTL exactly when there is an
	 * RTL letter: lines without one look the same either way */
	if (!s->app || sk_bidi_message_dir(line, len, 1) != SK_BIDI_RTL)
		return;
	int cols = sk_chat_term_cols();
	int w = sk_text_width(prompt, strlen(prompt)) + sk_text_width(line, len);
	if (w >= cols)
		return;
	char *vis;
	if (sk_bidi_visual_line_shaped(line, len, sk_bidi_message_dir(line, len, s->rtl_ui), sk_chat_stream_shaping(), &vis) != 0)
		return;
	printf("\033[A\r\033[K%s%s\n", prompt, vis);
	fflush(stdout);
	free(vis);
}

int sk_chat_repl_tty(sk_chat_session *s)
{
	char hist[4096];
	int have_hist = 0;
	if (sk_state_dir(NULL, hist, sizeof hist) == 0 &&
	    strlen(hist) + sizeof "/chat_history" < sizeof hist) {
		strcat(hist, "/chat_history");
		have_hist = 1;
	} else if (!s->quiet) {
		fprintf(stderr, _("sokhan: warning: no history: %s\n"), sk_error());
	}
	rl_readline_name = "sokhan";
	if (!isatty(STDOUT_FILENO))
		rl_outstream = stderr; /* answers go to the file, the prompt stays visible */
	rl_catch_signals = 0;
	rl_bind_key('\t', rl_insert); /* no file-name completion in a chat */
	using_history();
	stifle_history(SK_HISTORY_MAX);
	if (have_hist)
		read_history(hist);
	if (!s->quiet)
		sk_chat_err_lines(s, _("Type /help for the commands, Ctrl-D to leave."), 0);

	const char *prompt = "> ";
	int quit = 0;
	rl_callback_handler_install(prompt, on_line);
	while (!quit) {
		/* Ctrl-C may come while readline is busy with earlier keys, not
		 * only while select() waits */
		if (sk_prompt_sigint) {
			sk_prompt_sigint = 0;
			clear_input_line();
		}
		fd_set fds;
		FD_ZERO(&fds);
		FD_SET(STDIN_FILENO, &fds);
		int r = select(STDIN_FILENO + 1, &fds, NULL, NULL, NULL);
		if (r < 0) {
			if (errno != EINTR)
				break;
			continue;
		}
		rl_callback_read_char();
		if (sk_eof) {
			rl_callback_handler_remove();
			fputc('\n', rl_outstream ? rl_outstream : stdout);
			break;
		}
		if (!sk_line)
			continue;
		char *line = sk_line;
		sk_line = NULL;
		rl_callback_handler_remove(); /* the terminal is back in its normal mode while answering */
		size_t tl;
		sk_chat_trim(line, strlen(line), &tl);
		if (tl > 0) {
			add_history(line);
			if (have_hist && (append_history(1, hist) != 0 && write_history(hist) != 0))
				have_hist = 0;
		}
		reshow_input(s, prompt, line);
		/* no echo while answering: keys typed ahead (and "^C") would land
		 * in the middle of the line being redrawn */
		struct termios saved;
		int have_tio = tcgetattr(STDIN_FILENO, &saved) == 0;
		if (have_tio) {
			struct termios t = saved;
			t.c_lflag &= ~(tcflag_t)(ECHO | ECHOCTL);
			tcsetattr(STDIN_FILENO, TCSANOW, &t);
		}
		quit = sk_chat_handle_line(s, line);
		if (have_tio)
			tcsetattr(STDIN_FILENO, TCSANOW, &saved);
		free(line);
		sk_prompt_sigint = 0;
		if (!quit)
			rl_callback_handler_install(prompt, on_line);
	}
	if (have_hist)
		history_truncate_file(hist, SK_HISTORY_MAX);
	return SK_EXIT_OK;
}
