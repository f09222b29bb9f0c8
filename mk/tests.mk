# tests/: one test program per module (make check runs them all through
# tests/run-tests.sh), shell tests of the commands, benchmarks built but not
# run, the committed fixtures with their generators, and libFuzzer targets
# (make fuzz).

check_PROGRAMS += \
	tests/test_cuda \
	tests/test_cuda_train \
	tests/test_cuda_backward \
	tests/test_core \
	tests/test_safetensors \
	tests/test_gguf \
	tests/test_quants \
	tests/test_tokenizer \
	tests/test_chat_template \
	tests/test_config \
	tests/test_model_source \
	tests/test_nf4 \
	tests/test_lora \
	tests/test_ops \
	tests/test_q8 \
	tests/test_forward \
	tests/test_sampler \
	tests/test_npy \
	tests/test_generate_mock \
	tests/test_generate \
	tests/test_bidi \
	tests/test_chat_stream \
	tests/test_dataset \
	tests/test_optim \
	tests/test_checkpoint \
	tests/test_gemma3_270m \
	tests/test_backward \
	tests/test_grad \
	tests/test_train \
	tests/test_merge \
	tests/test_engine \
	tests/test_ui_widgets \
	tests/sk_compare

tests_test_cuda_SOURCES = tests/test_cuda.c tests/cuda_test.h tests/test.h
tests_test_cuda_train_SOURCES = tests/test_cuda_train.c tests/test.h
tests_test_cuda_backward_SOURCES = tests/test_cuda_backward.c tests/cuda_test.h tests/test.h
tests_test_core_SOURCES = tests/test_core.c tests/test.h
tests_test_safetensors_SOURCES = tests/test_safetensors.c tests/test.h
tests_test_gguf_SOURCES = tests/test_gguf.c tests/test.h
tests_test_quants_SOURCES = tests/test_quants.c tests/test.h
tests_test_tokenizer_SOURCES = tests/test_tokenizer.c tests/test.h
tests_bench_tokenizer_SOURCES = tests/bench_tokenizer.c
tests_test_chat_template_SOURCES = tests/test_chat_template.c tests/test.h
tests_test_config_SOURCES = tests/test_config.c tests/test.h
tests_test_model_source_SOURCES = tests/test_model_source.c tests/test.h
tests_test_nf4_SOURCES = tests/test_nf4.c tests/test.h
tests_test_lora_SOURCES = tests/test_lora.c tests/test.h
tests_test_ops_SOURCES = tests/test_ops.c tests/test.h
tests_test_q8_SOURCES = tests/test_q8.c tests/test.h
tests_test_forward_SOURCES = tests/test_forward.c tests/test.h
tests_bench_forward_SOURCES = tests/bench_forward.c
tests_test_sampler_SOURCES = tests/test_sampler.c tests/test.h
tests_test_npy_SOURCES = tests/test_npy.c tests/test.h
tests_test_generate_mock_SOURCES = tests/test_generate_mock.c tests/test.h
tests_test_generate_SOURCES = tests/test_generate.c tests/test.h
tests_test_bidi_SOURCES = tests/test_bidi.c tests/test.h
tests_test_chat_stream_SOURCES = tests/test_chat_stream.c tests/test.h src/chat_stream.c src/chat_stream.h
tests_test_dataset_SOURCES = tests/test_dataset.c tests/test.h
tests_test_optim_SOURCES = tests/test_optim.c tests/test.h
tests_test_checkpoint_SOURCES = tests/test_checkpoint.c tests/test.h
tests_test_gemma3_270m_SOURCES = tests/test_gemma3_270m.c tests/test.h
tests_test_backward_SOURCES = tests/test_backward.c tests/test.h
tests_test_grad_SOURCES = tests/test_grad.c tests/test.h
tests_test_train_SOURCES = tests/test_train.c tests/test.h
tests_test_merge_SOURCES = tests/test_merge.c tests/test.h
tests_test_engine_SOURCES = tests/test_engine.c tests/test.h
tests_test_ui_widgets_SOURCES = tests/test_ui_widgets.c tests/test.h
# not a test: the shell tests' comparison helper (tests/run-tests.sh runs only test_*)
tests_sk_compare_SOURCES = tests/sk_compare.c

SHELL_TESTS += \
	tests/test_cli.sh \
	tests/test_default_model.sh \
	tests/test_data_files.sh \
	tests/test_i18n.sh \
	tests/test_tokenize_cli.sh \
	tests/test_info.sh \
	tests/test_generate.sh \
	tests/test_chat.sh \
	tests/test_plot.sh \
	tests/test_grad.sh \
	tests/test_train.sh \
	tests/test_merge.sh \
	tests/test_tui.sh \
	tests/test_cpu_isa.sh \
	tests/test_kernel_launches.sh


# built with `make check` but not run as tests: ./tests/bench_*

noinst_PROGRAMS = \
	tests/bench_tokenizer \
	tests/bench_forward



EXTRA_DIST += \
	tests/gpu/pack.sh tests/gpu/env.sh tests/gpu/check.sh tests/gpu/all.sh tests/gpu/bench.sh tests/gpu/bench_train.sh tests/gpu/train_check.sh tests/bench/anchor_hf.py tests/bench/make_seed_like.py \
	tests/bench/anchor_llama.sh tests/bench/random_gguf.py \
	tests/run-tests.sh \
	tests/test_cli.sh \
	tests/test_default_model.sh \
	tests/test_data_files.sh \
	tests/test_i18n.sh \
	tests/test_kernel_launches.sh \
	tests/kernel_launch_lint.py \
	tests/lib.sh \
	tests/fixtures/safetensors/make_fixtures.py \
	tests/fixtures/safetensors/reference.safetensors \
	tests/fixtures/safetensors/writer_expected.safetensors \
	tests/fuzz/fuzz_safetensors.c \
	tests/fuzz/seeds/fuzz_safetensors/reference.safetensors \
	tests/fuzz/seeds/fuzz_safetensors/writer.safetensors \
	tests/fuzz/seeds/fuzz_safetensors/small.safetensors \
	tests/fuzz/seeds/fuzz_safetensors/empty_header.safetensors \
	tests/fixtures/gguf/make_gguf_fixture.py \
	tests/fixtures/gguf/fixture.gguf \
	tests/fixtures/gguf/expected.bin \
	tests/fuzz/fuzz_gguf.c \
	tests/fuzz/seeds/fuzz_gguf \
	tests/fixtures/tokenizer/make_corpus.py \
	tests/fixtures/tokenizer/make_reference.py \
	tests/fixtures/tokenizer/corpus.jsonl \
	tests/fixtures/tokenizer/reference.jsonl \
	tests/fixtures/tokenizer/check_gguf_merges.py \
	tests/test_tokenize_cli.sh \
	tests/fuzz/fuzz_tokenizer_json.c \
	tests/fuzz/seeds/fuzz_tokenizer_json \
	tests/fixtures/chat/conversations.jsonl \
	tests/fixtures/chat/reference.jsonl \
	tests/fixtures/chat/make_reference.py \
	tests/fuzz/fuzz_chat_template.c \
	tests/fuzz/seeds/fuzz_chat_template/user_assistant \
	tests/fuzz/seeds/fuzz_chat_template/system_first \
	tests/test_info.sh \
	tests/fuzz/fuzz_config.c \
	tests/fixtures/model/make_model_fixtures.py \
	tests/fixtures/model/e4b-config/config.json \
	tests/fixtures/model/e2b-config/config.json \
	tests/fixtures/model/gemma3n-tiny/config.json \
	tests/fixtures/model/gemma3n-tiny/model.safetensors.index.json \
	tests/fixtures/model/gemma3n-tiny/model-00001-of-00002.safetensors \
	tests/fixtures/model/gemma3n-tiny/model-00002-of-00002.safetensors \
	tests/fixtures/model/gemma3n-tiny-nokv/config.json \
	tests/fixtures/model/gemma3n-tiny-nokv/model.safetensors.index.json \
	tests/fixtures/model/gemma3n-tiny-nokv/model-00001-of-00002.safetensors \
	tests/fixtures/model/gemma3n-tiny-nokv/model-00002-of-00002.safetensors \
	tests/fixtures/model/gemma3-tiny/config.json \
	tests/fixtures/model/gemma3-tiny/model.safetensors \
	tests/fixtures/model/gemma3n-tiny.gguf \
	tests/fixtures/model/gemma3-tiny.gguf \
	tests/fuzz/seeds/fuzz_config \
	tests/fixtures/make_fixtures.py \
	tests/fixtures/bnb/nf4_cases.safetensors \
	tests/fixtures/bnb/adamw8bit_steps.safetensors \
	tests/fixtures/bnb/versions.json \
	tests/fixtures/hf/tiny-gemma3n/config.json \
	tests/fixtures/hf/tiny-gemma3/config.json \
	tests/fixtures/hf/tiny-gemma3n/ref/adapter_all/adapter_config.json \
	tests/fixtures/hf/tiny-gemma3n/ref/adapter_all/adapter_model.safetensors \
	tests/fixtures/hf/tiny-gemma3n/ref/adapter_all_mm/adapter_config.json \
	tests/fixtures/hf/tiny-gemma3n/ref/adapter_all_mm/adapter_model.safetensors \
	tests/fixtures/hf/tiny-gemma3n/ref/adapter_mlp_rslora/adapter_config.json \
	tests/fixtures/hf/tiny-gemma3n/ref/adapter_mlp_rslora/adapter_model.safetensors \
	tests/fixtures/hf/tiny-gemma3n/ref/adapter_mlp_rslora_mm/adapter_config.json \
	tests/fixtures/hf/tiny-gemma3n/ref/adapter_mlp_rslora_mm/adapter_model.safetensors \
	tests/fixtures/hf/tiny-gemma3/ref/adapter_all/adapter_config.json \
	tests/fixtures/hf/tiny-gemma3/ref/adapter_all/adapter_model.safetensors \
	tests/fuzz/fuzz_lora_config.c \
	tests/fuzz/seeds/fuzz_lora_config/list.json \
	tests/fuzz/seeds/fuzz_lora_config/regex.json \
	tests/fuzz/seeds/fuzz_lora_config/e4b.json \
	tests/fuzz/seeds/fuzz_lora_config/raw_regex.txt \
	tests/test_generate.sh \
	tests/fixtures/npy/make_npy.py \
	tests/fixtures/npy/f32_2x3.npy \
	tests/fixtures/npy/i32_5.npy \
	tests/fixtures/npy/f32_scalar.npy \
	tests/fixtures/npy/f32_2x0x4.npy \
	tests/fixtures/npy/f32_3d.npy \
	tests/fixtures/npy/f32_v2.npy \
	tests/fixtures/npy/f64_2.npy \
	tests/fixtures/npy/f32_be.npy \
	tests/fixtures/npy/f32_fortran.npy \
	tests/fuzz/fuzz_npy.c \
	tests/fuzz/seeds/fuzz_npy \
	tests/test_chat.sh \
	tests/fixtures/make_tiny_tokenizer.py \
	tests/fixtures/hf/tiny-gemma3n/tokenizer.json \
	tests/fixtures/hf/tiny-gemma3n/tokenizer_config.json \
	tests/fixtures/hf/tiny-gemma3/tokenizer.json \
	tests/fixtures/hf/tiny-gemma3/tokenizer_config.json \
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
	tests/fuzz/seeds/fuzz_dataset_row/text \
	tests/fixtures/bnb/adamw8bit_steps.json \
	tests/fixtures/optim/make_lr_schedules.py \
	tests/fuzz/fuzz_optim_state.c \
	tests/fuzz/seeds/fuzz_optim_state/adamw8bit.safetensors \
	tests/fuzz/seeds/fuzz_optim_state/adamw.safetensors \
	tests/test_plot.sh \
	tests/fixtures/check_peft_adapter.py \
	tests/fixtures/train/make_metrics.py \
	tests/fixtures/train/metrics.jsonl \
	tests/fuzz/fuzz_trainer_state.c \
	tests/fuzz/seeds/fuzz_trainer_state/state.json \
	tests/fuzz/seeds/fuzz_trainer_state/metrics.jsonl \
	tests/fixtures/gemma3-270m/make_reference.py \
	tests/fixtures/gemma3-270m/reference.json \
	tests/fixtures/gemma3-270m/README.md \
	docs/perf.md \
	tests/test_grad.sh \
	tests/fixtures/hf/tiny-gemma3n/ref/grad_all.safetensors \
	tests/fixtures/hf/tiny-gemma3n/ref/grad_mlp_rslora.safetensors \
	tests/fixtures/hf/tiny-gemma3/ref/grad_all.safetensors \
	tests/test_train.sh \
	tests/fixtures/train/tiny.jsonl \
	tests/fixtures/train/bad.jsonl \
	tests/test_merge.sh \
	tests/fixtures/check_merged_hf.py \
	tests/test_tui.sh \
	docs/tui.md


# NAME:SOURCE:SOURCE...: each built with clang -fsanitize=fuzzer
FUZZ_TARGETS += \
	fuzz_safetensors:tests/fuzz/fuzz_safetensors.c:engine/format/safetensors_read.c:engine/format/safetensors_index.c:engine/format/safetensors_write.c:engine/format/safetensors_dtypes.c:engine/error.c:engine/format/dtype.c:engine/format/files.c \
	fuzz_gguf:tests/fuzz/fuzz_gguf.c:engine/format/gguf.c:engine/format/quants.c:engine/error.c:engine/format/files.c \
	fuzz_tokenizer_json:tests/fuzz/fuzz_tokenizer_json.c:engine/text/tokenizer.c:engine/text/tokenizer_decode.c:engine/text/detok_stream.c:engine/text/tokenizer_json.c:engine/error.c:engine/strbuf.c \
	fuzz_chat_template:tests/fuzz/fuzz_chat_template.c:engine/text/chat_template.c:engine/error.c \
	fuzz_config:tests/fuzz/fuzz_config.c:engine/model/config.c:engine/error.c \
	fuzz_lora_config:tests/fuzz/fuzz_lora_config.c:engine/model/lora_config.c:engine/error.c:engine/strbuf.c \
	fuzz_npy:tests/fuzz/fuzz_npy.c:engine/format/npy.c:engine/format/files.c:engine/error.c \
	fuzz_dataset_row:tests/fuzz/fuzz_dataset_row.c:engine/train/dataset_row.c:engine/text/chat_template.c:engine/error.c \
	fuzz_optim_state:tests/fuzz/fuzz_optim_state.c:engine/train/optim.c:engine/train/optim_state.c:engine/train/optim_adamw8bit.c:engine/train/optim_adamw.c:engine/train/optim_clip.c:engine/format/nf4.c:engine/threadpool.c:engine/format/dynamic_map.c:engine/format/safetensors_read.c:engine/format/safetensors_index.c:engine/format/safetensors_write.c:engine/format/safetensors_dtypes.c:engine/error.c:engine/format/dtype.c:engine/format/files.c:engine/format/tensor_view.c \
	fuzz_trainer_state:tests/fuzz/fuzz_trainer_state.c:engine/train/checkpoint.c:engine/train/metrics.c:engine/format/atomic_dir.c:engine/train/adapter_write.c:engine/format/safetensors_write.c:engine/format/safetensors_dtypes.c:engine/format/safetensors_read.c:engine/model/lora.c:engine/model/lora_config.c:engine/model/config.c:engine/format/dtype.c:engine/format/tensor_view.c:engine/format/files.c:engine/error.c:engine/strbuf.c
