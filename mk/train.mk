# engine/train/: the backward pass to the LoRA factors and the fused loss,
# trainable adapters, optimizers and schedules, datasets and batches, the
# training loop, checkpoints, metrics and their SVG chart, the adapter
# writer, and merging.
libsokhan_a_SOURCES += \
	engine/train/train_grad.h engine/train/train_internal.h \
	engine/train/gemma_backward.c engine/train/loss.c engine/train/lora_train.c engine/train/train_device.c \
	engine/train/optim.h engine/train/optim_internal.h \
	engine/train/optim.c engine/train/optim_state.c engine/train/optim_clip.c \
	engine/train/optim_adamw8bit.c engine/train/optim_adamw.c \
	engine/train/lr_schedule.h engine/train/lr_schedule.c \
	engine/train/dataset.c engine/train/dataset.h engine/train/dataset_row.c \
	engine/train/batcher.c engine/train/batcher.h \
	engine/train/train.c engine/train/train.h engine/train/train_config.c \
	engine/train/pass_plan.c engine/train/pass_plan.h \
	engine/train/checkpoint.c engine/train/checkpoint.h \
	engine/train/metrics.c engine/train/metrics.h \
	engine/train/svg_plot.c engine/train/svg_plot.h \
	engine/train/adapter_write.c engine/train/adapter_write.h \
	engine/train/merge.c engine/train/merge.h engine/train/merge_internal.h \
	engine/train/merge_tensor.c engine/train/merge_files.c
