/* .npy reader and writer: files NumPy wrote (tests/fixtures/npy/,
 * make_npy.py), written back byte for byte, round trips, and malformed
 * headers. */
#include <stdint.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/format/npy.h"
#include "tests/test.h"

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
	static char buf[512];
	snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
	return buf;
}

static int read_fixture(const char *name, sk_npy *a)
{
	char rel[256];
	snprintf(rel, sizeof rel, "tests/fixtures/npy/%s", name);
	return sk_npy_read(sk_test_path(rel), a);
}

TEST(reads_numpy_f32_2d)
{
	sk_npy a;
	CHECK_EQ_INT(read_fixture("f32_2x3.npy", &a), 0);
	CHECK_EQ_INT(a.dtype, SK_NPY_F32);
	CHECK_EQ_INT(a.ndim, 2);
	CHECK_EQ_INT(a.shape[0], 2);
	CHECK_EQ_INT(a.shape[1], 3);
	CHECK_EQ_INT(a.count, 6);
	const float *f = a.data;
	for (int i = 0; i < 6 && a.data; i++)
		CHECK_NEAR(f[i], i * 0.25 - 1.5, 0);
	sk_npy_free(&a);
}

TEST(reads_numpy_i32_1d)
{
	sk_npy a;
	CHECK_EQ_INT(read_fixture("i32_5.npy", &a), 0);
	CHECK_EQ_INT(a.dtype, SK_NPY_I32);
	CHECK_EQ_INT(a.ndim, 1);
	CHECK_EQ_INT(a.shape[0], 5);
	const int32_t want[5] = { 7, -3, 0, INT32_MAX, INT32_MIN };
	CHECK(a.data && memcmp(a.data, want, sizeof want) == 0);
	sk_npy_free(&a);
}

TEST(reads_scalar_empty_3d_and_v2)
{
	sk_npy a;
	CHECK_EQ_INT(read_fixture("f32_scalar.npy", &a), 0);
	CHECK_EQ_INT(a.ndim, 0);
	CHECK_EQ_INT(a.count, 1);
	CHECK(a.data && ((float *)a.data)[0] == 3.5f);
	sk_npy_free(&a);
	CHECK_EQ_INT(read_fixture("f32_2x0x4.npy", &a), 0);
	CHECK_EQ_INT(a.ndim, 3);
	CHECK_EQ_INT(a.shape[1], 0);
	CHECK_EQ_INT(a.count, 0);
	sk_npy_free(&a);
	CHECK_EQ_INT(read_fixture("f32_3d.npy", &a), 0);
	CHECK_EQ_INT(a.ndim, 3);
	CHECK(a.shape[0] == 2 && a.shape[1] == 3 && a.shape[2] == 4);
	CHECK(a.data && ((float *)a.data)[23] == 23 * 0.25f - 1.5f);
	sk_npy_free(&a);
	CHECK_EQ_INT(read_fixture("f32_v2.npy", &a), 0);
	CHECK_EQ_INT(a.count, 4);
	CHECK(a.data && ((float *)a.data)[3] == 3 * 0.25f - 1.5f);
	sk_npy_free(&a);
}

TEST(refuses_other_layouts)
{
	sk_npy a;
	CHECK_EQ_INT(read_fixture("f64_2.npy", &a), -1);
	CHECK(strstr(sk_error(), "<f8") != NULL);
	CHECK_EQ_INT(read_fixture("f32_be.npy", &a), -1);
	CHECK(strstr(sk_error(), ">f4") != NULL);
	CHECK_EQ_INT(read_fixture("f32_fortran.npy", &a), -1);
	CHECK(strstr(sk_error(), "Fortran") != NULL);
	CHECK_EQ_INT(sk_npy_read(tmp_path("does-not-exist.npy"), &a), -1);
	CHECK(strstr(sk_error(), "does-not-exist.npy") != NULL);
}

TEST(round_trip_f32_and_i32)
{
	float f[3 * 5];
	for (int i = 0; i < 15; i++)
		f[i] = (float)i * 1.25f - 7.0f + (i == 4 ? 1e-30f : 0.0f);
	int64_t shape[2] = { 3, 5 };
	CHECK_EQ_INT(sk_npy_write_f32(tmp_path("rt.npy"), f, 2, shape), 0);
	sk_npy a;
	CHECK_EQ_INT(sk_npy_read(tmp_path("rt.npy"), &a), 0);
	CHECK_EQ_INT(a.dtype, SK_NPY_F32);
	CHECK(a.ndim == 2 && a.shape[0] == 3 && a.shape[1] == 5);
	CHECK(a.data && memcmp(a.data, f, sizeof f) == 0);
	sk_npy_free(&a);

	int32_t v[4] = { -1, 0, 123456, INT32_MIN };
	int64_t s1[1] = { 4 };
	CHECK_EQ_INT(sk_npy_write_i32(tmp_path("rt_i.npy"), v, 1, s1), 0);
	CHECK_EQ_INT(sk_npy_read(tmp_path("rt_i.npy"), &a), 0);
	CHECK(a.dtype == SK_NPY_I32 && a.ndim == 1 && a.shape[0] == 4);
	CHECK(a.data && memcmp(a.data, v, sizeof v) == 0);
	sk_npy_free(&a);

	/* the data starts 64-byte aligned and the header ends in a newline */
	FILE *fp = fopen(tmp_path("rt.npy"), "rb");
	unsigned char hdr[10];
	CHECK(fp && fread(hdr, 1, 10, fp) == 10);
	size_t hlen = hdr[8] | (size_t)hdr[9] << 8;
	CHECK_EQ_INT((10 + hlen) % 64, 0);
	CHECK_EQ_INT(hdr[6], 1);
	if (fp) {
		fseek(fp, (long)(10 + hlen - 1), SEEK_SET);
		CHECK_EQ_INT(fgetc(fp), '\n');
		fclose(fp);
	}
	/* a scalar */
	float x = 2.5f;
	CHECK_EQ_INT(sk_npy_write_f32(tmp_path("sc.npy"), &x, 0, NULL), 0);
	CHECK_EQ_INT(sk_npy_read(tmp_path("sc.npy"), &a), 0);
	CHECK(a.ndim == 0 && a.count == 1 && a.data && *(float *)a.data == 2.5f);
	sk_npy_free(&a);
}

TEST(write_leaves_no_temporary_and_fails_cleanly)
{
	float f[2] = { 1, 2 };
	int64_t s[1] = { 2 };
	CHECK_EQ_INT(sk_npy_write_f32("/nonexistent-dir/x.npy", f, 1, s), -1);
	CHECK(strstr(sk_error(), "/nonexistent-dir/x.npy") != NULL);
	int64_t neg[1] = { -2 };
	CHECK_EQ_INT(sk_npy_write_f32(tmp_path("neg.npy"), f, 1, neg), -1);
	CHECK_EQ_INT(sk_npy_write_f32(tmp_path("nine.npy"), f, 9, s), -1);
	CHECK(access(tmp_path("neg.npy"), F_OK) != 0);
}

static int parse_str(const char *hdr_dict, size_t data_len, sk_npy *a)
{
	unsigned char buf[512];
	size_t hl = strlen(hdr_dict);
	memcpy(buf, "\x93NUMPY\x01\x00", 8);
	buf[8] = (unsigned char)hl;
	buf[9] = 0;
	memcpy(buf + 10, hdr_dict, hl);
	memset(buf + 10 + hl, 0x3f, data_len);
	return sk_npy_parse(buf, 10 + hl + data_len, "mem.npy", a);
}

TEST(malformed_headers)
{
	sk_npy a;
	const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";
	CHECK_EQ_INT(parse_str(ok, 8, &a), 0);
	sk_npy_free(&a);
	/* key order does not matter, double quotes and no trailing comma are fine */
	CHECK_EQ_INT(parse_str("{\"shape\": (1, 2), \"fortran_order\": False, \"descr\": \"<i4\"}", 8, &a), 0);
	CHECK(a.dtype == SK_NPY_I32 && a.ndim == 2);
	sk_npy_free(&a);
	const char *bad[] = {
		"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }x",
		"{'descr': '<f4', 'fortran_order': False}",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }",
		"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }",
		"{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (2,",
		"['descr']",
		"",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sk_error_clear();
		CHECK_MSG(parse_str(bad[i], 8, &a) == -1, "accepted: %s", bad[i]);
		CHECK(strstr(sk_error(), "mem.npy") != NULL);
	}
	/* data length must match the shape exactly */
	CHECK_EQ_INT(parse_str(ok, 7, &a), -1);
	CHECK_EQ_INT(parse_str(ok, 12, &a), -1);
	/* huge shapes do not allocate */
	CHECK_EQ_INT(parse_str("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", 8, &a), -1);
	/* header length past the end, bad magic, bad version */
	unsigned char b[16] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 200, 0 };
	CHECK_EQ_INT(sk_npy_parse(b, sizeof b, "b", &a), -1);
	b[6] = 9;
	CHECK_EQ_INT(sk_npy_parse(b, sizeof b, "b", &a), -1);
	b[1] = 'X';
	CHECK_EQ_INT(sk_npy_parse(b, sizeof b, "b", &a), -1);
	CHECK_EQ_INT(sk_npy_parse(b, 3, "b", &a), -1);
}

/* The whole file as bytes (malloc'd) and its size, or NULL. */
static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	unsigned char *buf = NULL;
	size_t cap = 0, n = 0, got;
	do {
		if (n == cap) {
			unsigned char *nb = realloc(buf, cap = cap ? 2 * cap : 4096);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	*len = n;
	return buf;
}

/* What we write is byte for byte what np.save wrote for the same array
 * (header dict, padding to 64 bytes, data), so NumPy reads it as its own:
 * every fixture np.save made in the layouts we write, read and written back. */
TEST(writes_what_numpy_writes)
{
	const char *names[] = { "f32_2x3.npy", "i32_5.npy", "f32_scalar.npy", "f32_2x0x4.npy", "f32_3d.npy" };
	for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
		sk_npy a;
		CHECK_EQ_INT(read_fixture(names[k], &a), 0);
		char out[512];
		snprintf(out, sizeof out, "%s", tmp_path(names[k]));
		CHECK_EQ_INT(sk_npy_write(out, a.dtype, a.data, a.ndim, a.shape), 0);
		char rel[256];
		snprintf(rel, sizeof rel, "tests/fixtures/npy/%s", names[k]);
		size_t nw = 0, nr = 0;
		unsigned char *w = slurp(out, &nw), *r = slurp(sk_test_path(rel), &nr);
		CHECK_MSG(w && r && nw == nr && memcmp(w, r, nr) == 0, "%s: %zu bytes written, NumPy's file has %zu%s",
		          names[k], nw, nr, w && r && nw == nr ? " and other bytes" : "");
		free(w);
		free(r);
		sk_npy_free(&a);
	}
}

TEST(reads_reference_logits)
{
	/* the model fixtures' logits, written by make_fixtures.py with NumPy */
	sk_npy a;
	CHECK_EQ_INT(sk_npy_read(sk_test_path("tests/fixtures/hf/tiny-gemma3n/ref/logits_0.npy"), &a), 0);
	CHECK(a.dtype == SK_NPY_F32 && a.ndim == 2 && a.shape[0] == 24 && a.shape[1] == 384);
	int nonzero = 0, finite = 1;
	for (size_t i = 0; i < a.count && a.data; i++) {
		float v = ((float *)a.data)[i];
		nonzero += v != 0.0f;
		finite &= isfinite(v) != 0;
	}
	CHECK(finite && nonzero > (int)a.count / 2);
	sk_npy_free(&a);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/sk_test_npy.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(reads_numpy_f32_2d);
	RUN(reads_numpy_i32_1d);
	RUN(reads_scalar_empty_3d_and_v2);
	RUN(refuses_other_layouts);
	RUN(round_trip_f32_and_i32);
	RUN(write_leaves_no_temporary_and_fails_cleanly);
	RUN(malformed_headers);
	RUN(writes_what_numpy_writes);
	RUN(reads_reference_logits);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	TEST_EXIT();
}
