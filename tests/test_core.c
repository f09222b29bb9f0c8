/* Core helpers: dtype sizes and conversions, atomic files and write errors, XDG paths, CLI number parsing. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/format/dtype.h"
#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/format/npy.h"
#include "engine/format/safetensors.h"
#include "engine/paths.h"
#include "engine/strbuf.h"
#include "engine/backend/backend_info.h"
#include "kernels/kernels.h"
#include "tests/test.h"

TEST(dtype_sizes)
{
	CHECK_EQ_INT(sk_dtype_nbytes(SK_DT_BF16, 3), 6);
	CHECK_EQ_INT(sk_dtype_nbytes(SK_DT_Q4_K, 512), 288);
	CHECK_EQ_INT(sk_dtype_nbytes(SK_DT_Q4_K, 100), -1);
	CHECK_EQ_INT(sk_dtype_nbytes(SK_DT_Q8_0, 64), 68);
	CHECK_EQ_INT(sk_dtype_nbytes(SK_DT_F32, INT64_MAX / 2), -1);
	CHECK(!strcmp(sk_dtype_name(SK_DT_Q6_K), "Q6_K"));
}

/* Every half-precision bit pattern survives f16 -> f32 -> f16 (NaNs stay NaN). */
TEST(f16_roundtrip_all)
{
	int bad = 0;
	for (uint32_t h = 0; h < 65536; h++) {
		float f = sk_f16_to_f32((uint16_t)h);
		uint16_t back = sk_f32_to_f16(f);
		int is_nan = ((h & 0x7c00) == 0x7c00) && (h & 0x3ff);
		if (is_nan ? !(f != f) : back != h)
			bad++;
	}
	CHECK_EQ_INT(bad, 0);
}

TEST(f16_rounding)
{
	CHECK_EQ_INT(sk_f32_to_f16(1.0f), 0x3c00);
	CHECK_EQ_INT(sk_f32_to_f16(65504.0f), 0x7bff);
	CHECK_EQ_INT(sk_f32_to_f16(65520.0f), 0x7c00);          /* ties to even overflow to inf */
	CHECK_EQ_INT(sk_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00); /* halfway, even stays */
	CHECK_EQ_INT(sk_f32_to_f16(1.0f + 3.0f / 2048), 0x3c02); /* halfway, odd rounds up */
	CHECK_EQ_INT(sk_f32_to_f16(5.9604645e-08f), 0x0001);     /* smallest subnormal */
	CHECK_EQ_INT(sk_f32_to_f16(2.9802322e-08f), 0x0000);     /* half of it: ties to even (0) */
	CHECK_EQ_INT(sk_f32_to_f16(-2.0f), 0xc000);
	CHECK_NEAR(sk_f16_to_f32(0x3555), 0.333251953125, 0);
}

TEST(bf16_rounding)
{
	CHECK_EQ_INT(sk_f32_to_bf16(1.0f), 0x3f80);
	/* 1 + 2^-8 is halfway between two bf16 values: even (1.0) wins */
	CHECK_EQ_INT(sk_f32_to_bf16(1.00390625f), 0x3f80);
	CHECK_EQ_INT(sk_f32_to_bf16(1.01171875f), 0x3f82);
	CHECK_NEAR(sk_bf16_to_f32(0xc0a0), -5.0, 0);
	float nan = 0.0f / 0.0f;
	CHECK(sk_bf16_to_f32(sk_f32_to_bf16(nan)) != sk_bf16_to_f32(sk_f32_to_bf16(nan)));
}

TEST(atomic_write)
{
	char dir[] = "/tmp/sk_test_core_XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[256];
	snprintf(path, sizeof path, "%s/a.bin", dir);
	CHECK_EQ_INT(sk_write_file_atomic(path, "hello", 5), 0);
	char *data;
	size_t len;
	CHECK_EQ_INT(sk_read_file(path, 100, &data, &len), 0);
	CHECK_EQ_INT(len, 5);
	CHECK(!memcmp(data, "hello", 5));
	free(data);
	/* a size bound is an error, not a truncation */
	CHECK_EQ_INT(sk_read_file(path, 4, &data, &len), -1);
	CHECK(strstr(sk_error(), "too large") != NULL);
	/* an aborted write leaves the old file and no temporary behind */
	sk_atomic_file af;
	CHECK_EQ_INT(sk_atomic_open(&af, path), 0);
	fputs("partial", af.fp);
	sk_atomic_abort(&af);
	CHECK_EQ_INT(sk_read_file(path, 100, &data, &len), 0);
	CHECK(len == 5 && !memcmp(data, "hello", 5));
	free(data);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "test $(ls %s | wc -l) -eq 1", dir);
	CHECK_EQ_INT(system(cmd), 0);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK_EQ_INT(system(cmd), 0);
}

/* A failed write says why, whether the write, the flush or the close finds it. */
TEST(write_error_says_why)
{
	const char *why = strerror(ENOSPC);
	static char big[1 << 16];
	FILE *f = fopen("/dev/full", "w");
	if (!f) {
		SKIP("no /dev/full");
		return;
	}
	CHECK_EQ_INT(sk_fwrite_all(f, "/dev/full", big, sizeof big), -1);
	CHECK_MSG(strstr(sk_error(), "/dev/full") && strstr(sk_error(), why), "%s", sk_error());
	fclose(f);
	/* a small write sits in the buffer: the close reports it */
	f = fopen("/dev/full", "w");
	CHECK(f != NULL);
	CHECK_EQ_INT(sk_fwrite_all(f, "/dev/full", "x", 1), 0);
	sk_error_clear();
	CHECK_EQ_INT(sk_fclose_written(f, "/dev/full", 0), -1);
	CHECK_MSG(strstr(sk_error(), why) != NULL, "%s", sk_error());
}

/* The file writers (atomic files, safetensors, .npy) on a file system that
 * refuses the bytes: a file size limit stands in for a full disk (EFBIG
 * rather than ENOSPC), and the reason must reach the message. */
TEST(writers_report_the_reason)
{
	char dir[] = "/tmp/sk_test_full_XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	static float data[1 << 14];
	char path[256];
	struct rlimit old, lim;
	CHECK_EQ_INT(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 4096;
	signal(SIGXFSZ, SIG_IGN); /* a failed write instead of the signal */
	CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);
	const char *why = strerror(EFBIG);

	snprintf(path, sizeof path, "%s/a.bin", dir);
	CHECK_EQ_INT(sk_write_file_atomic(path, data, sizeof data), -1);
	CHECK_MSG(strstr(sk_error(), "a.bin: ") && strstr(sk_error(), why), "%s", sk_error());
	snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
	sk_st_entry e = { "state", SK_DT_F32, 1, { 1 << 14 }, data };
	CHECK_EQ_INT(sk_st_write(path, &e, 1), -1);
	CHECK_MSG(strstr(sk_error(), "optimizer.safetensors: ") && strstr(sk_error(), why), "%s", sk_error());
	snprintf(path, sizeof path, "%s/x.npy", dir);
	int64_t shape[1] = { 1 << 14 };
	CHECK_EQ_INT(sk_npy_write_f32(path, data, 1, shape), -1);
	CHECK_MSG(strstr(sk_error(), "x.npy: ") && strstr(sk_error(), why), "%s", sk_error());

	CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	char cmd[300];
	/* no temporary file is left behind */
	snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s)\"", dir);
	CHECK_EQ_INT(system(cmd), 0);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK_EQ_INT(system(cmd), 0);
}

/* The growable string every text builder uses. */
TEST(strbuf)
{
	sk_strbuf b = { 0 };
	CHECK_EQ_INT(sk_strbuf_add(&b, "", 0), 0);
	CHECK(b.s != NULL && b.s[0] == '\0' && b.len == 0);
	CHECK_EQ_INT(sk_strbuf_puts(&b, "ab"), 0);
	CHECK_EQ_INT(sk_strbuf_putc(&b, 'c'), 0);
	CHECK_EQ_INT(sk_strbuf_add(&b, "d\0e", 3), 0); /* bytes, NULs included */
	CHECK_EQ_INT(b.len, 6);
	CHECK(!memcmp(b.s, "abcd\0e", 7));
	sk_strbuf_clear(&b);
	CHECK(b.len == 0 && b.s[0] == '\0');
	/* longer than printf's stack buffer and than the first allocation */
	char big[3000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	CHECK_EQ_INT(sk_strbuf_printf(&b, "<%s|%d>", big, 42), 0);
	CHECK_EQ_INT(b.len, sizeof big - 1 + 5);
	CHECK(b.s[0] == '<' && !strcmp(b.s + b.len - 4, "|42>") && strlen(b.s) == b.len);
	CHECK(b.cap > b.len);
	/* after a failed allocation every append fails and leaves the text alone */
	b.oom = 1;
	CHECK_EQ_INT(sk_strbuf_puts(&b, "more"), -1);
	CHECK_EQ_INT(b.len, sizeof big - 1 + 5);
	sk_strbuf_free(&b);
	CHECK(b.s == NULL && b.len == 0 && b.cap == 0 && !b.oom);
}

TEST(missing_file_errors)
{
	sk_mapping m;
	CHECK_EQ_INT(sk_map_file("/nonexistent/x.safetensors", &m), -1);
	CHECK(strstr(sk_error(), "/nonexistent/x.safetensors") != NULL);
	CHECK_EQ_INT(sk_map_file("/tmp", &m), -1);
}

TEST(xdg_dirs)
{
	char dir[] = "/tmp/sk_test_xdg_XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	setenv("XDG_CACHE_HOME", dir, 1);
	char buf[512], want[512];
	CHECK_EQ_INT(sk_cache_dir("models", buf, sizeof buf), 0);
	snprintf(want, sizeof want, "%s/sokhan/models", dir);
	CHECK(!strcmp(buf, want));
	CHECK_EQ_INT(sk_is_dir(buf), 1);
	/* a relative XDG value is ignored in favour of HOME */
	setenv("XDG_STATE_HOME", "relative", 1);
	setenv("HOME", dir, 1);
	CHECK_EQ_INT(sk_state_dir(NULL, buf, sizeof buf), 0);
	snprintf(want, sizeof want, "%s/.local/state/sokhan", dir);
	CHECK(!strcmp(buf, want));
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK_EQ_INT(system(cmd), 0);
}

/* Data files: beside the executable (an uninstalled build) first, then the
 * installed data directory; neither is an error naming both. */
TEST(data_path)
{
	char dir[] = "/tmp/sk_test_data_XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char bin[64], share[64], buf[512], want[512], cmd[600];
	snprintf(bin, sizeof bin, "%s/bin", dir);
	snprintf(share, sizeof share, "%s/share/sokhan", dir);
	snprintf(cmd, sizeof cmd, "mkdir -p %s/data %s && touch %s/data/x.jsonl %s/x.jsonl %s/y.jsonl", bin, share, bin,
		 share, share);
	CHECK_EQ_INT(system(cmd), 0);
	CHECK_EQ_INT(sk_data_path_in(bin, share, "x.jsonl", buf, sizeof buf), 0);
	snprintf(want, sizeof want, "%s/data/x.jsonl", bin);
	CHECK_MSG(!strcmp(buf, want), "%s", buf);
	CHECK_EQ_INT(sk_data_path_in(bin, share, "y.jsonl", buf, sizeof buf), 0);
	snprintf(want, sizeof want, "%s/y.jsonl", share);
	CHECK_MSG(!strcmp(buf, want), "%s", buf);
	CHECK_EQ_INT(sk_data_path_in(NULL, share, "x.jsonl", buf, sizeof buf), 0);
	snprintf(want, sizeof want, "%s/x.jsonl", share);
	CHECK_MSG(!strcmp(buf, want), "%s", buf);
	CHECK_EQ_INT(sk_data_path_in(bin, share, "z.jsonl", buf, sizeof buf), -1);
	CHECK(buf[0] == '\0');
	CHECK_MSG(strstr(sk_error(), "z.jsonl") && strstr(sk_error(), bin) && strstr(sk_error(), share), "%s", sk_error());
	/* a path that does not fit is not found, never cut short */
	CHECK_EQ_INT(sk_data_path_in(bin, share, "x.jsonl", buf, 8), -1);
	/* the real lookup: this test program is not beside data/, and the sample
	 * is found only where it was installed */
	if (sk_data_path(SK_SAMPLE_DATASET, buf, sizeof buf) == 0)
		CHECK_MSG(strstr(buf, "/" SK_SAMPLE_DATASET) != NULL, "%s", buf);
	else
		CHECK(strstr(sk_error(), SK_PKGDATADIR) != NULL);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK_EQ_INT(system(cmd), 0);
}

TEST(backend_without_gpu)
{
	/* This runs where no GPU is present (CI): CUDA must be reported as
	 * unavailable with a reason, auto must pick the CPU, and asking for
	 * cuda must be an error, never a crash. Where a GPU is present the
	 * same calls must agree with each other. */
	sk_backend_info bi;
	sk_backend_probe(&bi);
	sk_device d;
	CHECK_EQ_INT(sk_backend_resolve(SK_DEVICE_AUTO, &bi, &d), 0);
	if (bi.cuda_devices <= 0) {
		CHECK(bi.cuda_reason[0] != '\0');
		CHECK_EQ_INT(d, SK_DEVICE_CPU);
		CHECK_EQ_INT(sk_backend_resolve(SK_DEVICE_CUDA, &bi, &d), -1);
		CHECK(strstr(sk_error(), "unavailable") != NULL);
	} else {
		CHECK_EQ_INT(d, SK_DEVICE_CUDA);
	}
}

/* The CUDA bf16 -> f32 kernel against the CPU conversion, on every bf16
 * bit pattern; runs only where a GPU is present. */
TEST(cuda_bf16_parity)
{
	char reason[256];
	if (sk_cuda_probe(reason, sizeof reason) <= 0) {
		SKIP_GPU("no usable GPU: %.200s", reason);
		return;
	}
	size_t n = 65536 + 13; /* an odd tail exercises the unaligned path */
	uint16_t *src = malloc(n * 2);
	float *dst = malloc(n * 4);
	for (size_t i = 0; i < n; i++)
		src[i] = (uint16_t)(i * 40503u);
	char err[256];
	CHECK_EQ_INT(sk_cuda_bf16_to_f32_host(src, dst, n, err, sizeof err), 0);
	size_t bad = 0;
	for (size_t i = 0; i < n; i++) {
		float ref = sk_bf16_to_f32(src[i]);
		if (memcmp(&ref, &dst[i], 4) != 0)
			bad++;
	}
	CHECK_EQ_INT(bad, 0);
	free(src);
	free(dst);
}

int main(void)
{
	RUN(dtype_sizes);
	RUN(f16_roundtrip_all);
	RUN(f16_rounding);
	RUN(bf16_rounding);
	RUN(atomic_write);
	RUN(write_error_says_why);
	RUN(writers_report_the_reason);
	RUN(strbuf);
	RUN(missing_file_errors);
	RUN(xdg_dirs);
	RUN(data_path);
	RUN(backend_without_gpu);
	RUN(cuda_bf16_parity);
	TEST_EXIT();
}
