# Training data: JSONL conversations -> ids + loss masks (dataset), and
# batches with split, shuffle, packing, padding, resumable position (batcher);
# the Persian sample dataset.
libsokhan_a_SOURCES += \
	engine/dataset.c engine/dataset.h engine/dataset_row.c \
	engine/batcher.c engine/batcher.h

check_PROGRAMS += tests/test_dataset
tests_test_dataset_SOURCES = tests/test_dataset.c tests/test.h

EXTRA_DIST += \
	data/persian-sample.jsonl \
	data/README.md \
	tests/fixtures/dataset/make_reference.py \
	tests/fixtures/dataset/reference.jsonl \
	tests/fixtures/dataset/messages.jsonl \
	tests/fixtures/dataset/sharegpt.jsonl \
	tests/fixtures/dataset/text.jsonl \
	tests/fixtures/dataset/bad_rows.jsonl \
	tests/fixtures/dataset/empty.jsonl \
	tests/fixtures/dataset/blank.jsonl \
	tests/fixtures/dataset/utf16.jsonl \
	tests/fixtures/dataset/nul.jsonl \
	tests/fixtures/dataset/not_utf8.jsonl \
	tests/fixtures/dataset/crlf_bom.jsonl \
	tests/fuzz/fuzz_dataset_row.c \
	tests/fuzz/seeds/fuzz_dataset_row/messages \
	tests/fuzz/seeds/fuzz_dataset_row/sharegpt \
	tests/fuzz/seeds/fuzz_dataset_row/text

FUZZ_TARGETS += fuzz_dataset_row:tests/fuzz/fuzz_dataset_row.c:engine/dataset_row.c:engine/chat_template.c:engine/error.c
