/* The input loops of `sokhan chat`: GNU readline on a terminal (history,
 * Ctrl-C clears the line or stops an answer, Ctrl-D quits), or one message
 * per line when standard input is not a terminal. */
#ifndef SK_CHAT_REPL_H
#define SK_CHAT_REPL_H

#include "src/chat_session.h"

/* Both return the exit status. */
int sk_chat_repl_tty(sk_chat_session *s);
int sk_chat_repl_pipe(sk_chat_session *s);

/* Installs the SIGINT handler: stop the answer being generated; between
 * answers, clear the input line (tty) or end the program (pipe). */
void sk_chat_signals(int interactive);

#endif
