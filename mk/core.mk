# Core: errors, dtypes, paths, file helpers; the CLI.
libsokhan_a_SOURCES += \
	engine/error.c engine/error.h \
	engine/i18n.h \
	engine/dtype.c engine/dtype.h \
	engine/tensor_view.c engine/tensor_view.h \
	engine/files.c engine/files.h \
	engine/paths.c engine/paths.h \
	engine/backend_info.c engine/backend_info.h

sokhan_SOURCES += \
	src/main.c \
	src/cli.c src/cli.h \
	src/commands.h

check_PROGRAMS += tests/test_core
tests_test_core_SOURCES = tests/test_core.c tests/test.h
SHELL_TESTS += tests/test_cli.sh tests/test_i18n.sh
EXTRA_DIST += tests/run-tests.sh tests/test_cli.sh tests/test_i18n.sh tests/lib.sh
