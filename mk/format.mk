# engine/format/: file formats and stored element types: safetensors
# (formats.md §4), GGUF (§5) and its quantized blocks, .npy, NF4 with double
# quantization and the 8-bit dynamic maps (§1, §2.1), file mappings and
# crash-safe writes of files and directories.
libsokhan_a_SOURCES += \
	engine/format/files.c engine/format/files.h \
	engine/format/atomic_dir.c engine/format/atomic_dir.h \
	engine/format/dtype.c engine/format/dtype.h \
	engine/format/tensor_view.c engine/format/tensor_view.h \
	engine/format/safetensors.h \
	engine/format/safetensors_dtypes.c engine/format/safetensors_dtypes.h \
	engine/format/safetensors_read.c engine/format/safetensors_index.c engine/format/safetensors_write.c \
	engine/format/gguf.c engine/format/gguf.h \
	engine/format/quants.c engine/format/quants.h \
	engine/format/npy.c engine/format/npy.h \
	engine/format/nf4.c engine/format/nf4.h \
	engine/format/dynamic_map.c
