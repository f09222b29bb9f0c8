# ui/: libsokhan_ui.a holds the pure text-layout and drawing functions
# (bidi and shaping through ICU, braille chart, sparkline, meter) shared by
# the chat REPL and the TUI; the TUI's app loop and views go into sokhan.
libsokhan_ui_a_SOURCES += \
	ui/bidi.c ui/bidi.h \
	ui/widgets.c ui/widgets.h
sokhan_SOURCES += \
	ui/tui.h ui/tui_internal.h \
	ui/tui_app.c ui/tui_input.c ui/tui_text.c ui/view_chat.c ui/view_train.c \
	ui/tui_train_form.c
