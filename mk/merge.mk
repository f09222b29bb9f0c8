# `sokhan merge`: a LoRA adapter merged into the original stored weights and
# written as a new (sharded) Hugging Face checkpoint.
libsokhan_a_SOURCES += \
	engine/merge.c engine/merge.h engine/merge_internal.h \
	engine/merge_tensor.c engine/merge_files.c

sokhan_SOURCES += src/cmd_merge.c

check_PROGRAMS += tests/test_merge
tests_test_merge_SOURCES = tests/test_merge.c tests/test.h
SHELL_TESTS += tests/test_merge.sh

EXTRA_DIST += \
	tests/test_merge.sh \
	tests/fixtures/check_merged_hf.py
