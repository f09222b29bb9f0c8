# ui/: libsokhan_ui.a holds the pure text-layout and drawing functions
# (bidi and shaping through ICU, braille chart, sparkline, meter) shared by
# the chat REPL and the TUI; the TUI's app loop and views go into sokhan.
libsokhan_ui_a_SOURCES += \
	ui/bidi.c ui/bidi.h \
	ui/widgets.c ui/widgets.h
sokhan_SOURCES += \
	ui/tui.h ui/tui_internal.h ui/tui_curses.h \
	ui/tui_app.c \
	ui/tui_views.c ui/tui_views.h \
	ui/view_chat.c ui/view_compare.c ui/view_train.c ui/view_log.c \
	ui/tui_train_form.c ui/tui_train_form.h \
	ui/tui_commands.c ui/tui_commands.h \
	ui/tui_input.c ui/tui_input.h \
	ui/tui_session.c ui/tui_session.h \
	ui/tui_conversation.c ui/tui_conversation.h \
	ui/tui_log.c ui/tui_log.h \
	ui/tui_flash.c ui/tui_flash.h \
	ui/tui_frame.c ui/tui_frame.h \
	ui/tui_text.c ui/tui_text.h \
	ui/tui_colors.c ui/tui_colors.h \
	ui/tui_term.c ui/tui_term.h \
	ui/tui_dump.c ui/tui_dump.h
