# The training loop (run object, configuration, evaluation), `sokhan train`
# and `sokhan eval` with their progress display.
libsokhan_a_SOURCES += \
	engine/train.c engine/train.h \
	engine/train_config.c

sokhan_SOURCES += \
	src/cmd_train.c \
	src/cmd_eval.c \
	src/progress.c src/progress.h

check_PROGRAMS += tests/test_train
tests_test_train_SOURCES = tests/test_train.c tests/test.h
SHELL_TESTS += tests/test_train.sh

EXTRA_DIST += \
	tests/test_train.sh \
	tests/fixtures/train/tiny.jsonl \
	tests/fixtures/train/bad.jsonl
