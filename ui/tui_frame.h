/* The frame around the views: the windows' layout for the terminal's size,
 * the header with the view tabs, the status line, the help box, and the
 * message that replaces them all on a screen below 80 x 24. */
#ifndef SK_UI_TUI_FRAME_H
#define SK_UI_TUI_FRAME_H

typedef struct tui tui;

/* (Re)creates the windows for the terminal's size; sets t->too_small. */
void tui_frame_layout(tui *t);
void tui_frame_free(tui *t);
void tui_frame_header(tui *t);
/* The flashed message, else the model, the adapter state, "generating"
 * and the training state. */
void tui_frame_status(tui *t);
void tui_frame_help(tui *t);
void tui_frame_too_small(tui *t);

#endif
