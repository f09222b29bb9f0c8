# The full-screen TUI (`sokhan tui`, the default command) and the engine
# thread it talks to: engine/engine.h is the engine's whole public face for
# the UI; ui/ holds the app loop, views, the readline bridge and pure
# drawing widgets (braille chart, sparkline, meter, text layout).
libsokhan_a_SOURCES += \
	engine/engine.c engine/engine.h engine/engine_internal.h \
	engine/engine_gen.c engine/engine_train.c
libsokhan_ui_a_SOURCES += ui/widgets.c ui/widgets.h

sokhan_SOURCES += \
	src/cmd_tui.c \
	ui/tui.h ui/tui_internal.h \
	ui/tui_app.c ui/tui_input.c ui/tui_text.c ui/tui_chat.c ui/tui_train.c \
	ui/tui_form.c

check_PROGRAMS += tests/test_engine tests/test_ui_widgets
tests_test_engine_SOURCES = tests/test_engine.c tests/test.h
tests_test_ui_widgets_SOURCES = tests/test_ui_widgets.c tests/test.h
SHELL_TESTS += tests/test_tui.sh

EXTRA_DIST += tests/test_tui.sh docs/tui.md
