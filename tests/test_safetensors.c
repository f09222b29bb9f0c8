/* Tests of the safetensors reader, writer and checkpoint loader against
 * files written by the reference Python package
 * (tests/fixtures/safetensors/make_fixtures.py) and hostile inputs built
 * here from templates. */
#include "engine/format/safetensors.h"

#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/format/files.h"
#include "tests/test.h"

#define MEMNAME "mem.safetensors"

static char tmp_root[] = "/tmp/sk_st_test.XXXXXX";

/* ---- helpers ---- */

/* A file image: 8-byte length of header, header, datalen bytes of a
 * non-zero pattern. Caller frees. */
static uint8_t *image(const char *header, size_t hlen, size_t datalen, size_t *len)
{
	*len = 8 + hlen + datalen;
	uint8_t *b = malloc(*len);
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
	memcpy(b + 8, header, hlen);
	for (size_t i = 0; i < datalen; i++)
		b[8 + hlen + i] = (uint8_t)(i * 37 + 11);
	return b;
}

/* Opens header+data from memory; expects failure with needle in the message. */
static int bad_case(const char *header, size_t datalen, const char *needle)
{
	size_t len;
	uint8_t *b = image(header, strlen(header), datalen, &len);
	sk_error_clear();
	sk_st_file *f = sk_st_open_mem(b, len, MEMNAME);
	int ok = f == NULL && strstr(sk_error(), needle) != NULL &&
		 strncmp(sk_error(), MEMNAME ": ", strlen(MEMNAME) + 2) == 0;
	if (!ok)
		fprintf(stderr, "  header %s\n  expected error with '%s', got %s'%s'\n", header, needle,
			f ? "success " : "", sk_error());
	sk_st_close(f);
	free(b);
	return ok;
}

static sk_st_file *good_case(const char *header, size_t datalen, uint8_t **buf)
{
	size_t len;
	*buf = image(header, strlen(header), datalen, &len);
	sk_st_file *f = sk_st_open_mem(*buf, len, MEMNAME);
	if (!f)
		fprintf(stderr, "  header %s: %s\n", header, sk_error());
	return f;
}

static float rd_f32(const void *p, size_t i)
{
	float v;
	memcpy(&v, (const char *)p + 4 * i, 4);
	return v;
}

static uint16_t rd_u16(const void *p, size_t i)
{
	uint16_t v;
	memcpy(&v, (const char *)p + 2 * i, 2);
	return v;
}

static int64_t rd_i64(const void *p, size_t i)
{
	int64_t v;
	memcpy(&v, (const char *)p + 8 * i, 8);
	return v;
}

static int32_t rd_i32(const void *p, size_t i)
{
	int32_t v;
	memcpy(&v, (const char *)p + 4 * i, 4);
	return v;
}

static double rd_f64(const void *p, size_t i)
{
	double v;
	memcpy(&v, (const char *)p + 8 * i, 8);
	return v;
}

static int shape_is(const sk_tensor_view *t, int ndim, const int64_t *dims)
{
	if (!t || t->ndim != ndim)
		return 0;
	for (int i = 0; i < ndim; i++)
		if (t->shape[i] != dims[i])
			return 0;
	return 1;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
	*len = fread(b, 1, (size_t)n, fp);
	fclose(fp);
	return b;
}

static void spit(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");
	if (!fp) {
		perror(path);
		return;
	}
	fwrite(data, 1, len, fp);
	fclose(fp);
}

static char *tmp_path(const char *rel)
{
	static char buf[2][4096];
	static int k;
	k ^= 1;
	snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_root, rel);
	return buf[k];
}

static int count_tmp_files(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *e;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".tmp."))
			n++;
	closedir(d);
	return n;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* ---- the Python reference file ---- */

static sk_st_file *open_reference(void)
{
	sk_st_file *f = sk_st_open(sk_test_path("tests/fixtures/safetensors/reference.safetensors"));
	if (!f)
		fprintf(stderr, "  %s\n", sk_error());
	return f;
}

TEST(reference_file_float_types)
{
	sk_st_file *f = open_reference();
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK_EQ_INT(sk_st_count(f), 16);

	const sk_tensor_view *t = sk_st_find(f, "f32");
	CHECK(shape_is(t, 2, (int64_t[]){ 2, 3 }) && t->dtype == SK_DT_F32 && t->nbytes == 24);
	const float f32[] = { 0.5f, -1.25f, 3.0f, 0.001f, -7.75f, 100.5f };
	for (int i = 0; t && i < 6; i++)
		CHECK(rd_f32(t->data, i) == f32[i]);

	t = sk_st_find(f, "f64");
	CHECK(shape_is(t, 1, (int64_t[]){ 3 }) && t->dtype == SK_DT_F64);
	CHECK(t && rd_f64(t->data, 0) == 1.0 / 3.0 && rd_f64(t->data, 1) == -2.5e10 &&
	      rd_f64(t->data, 2) == 6.02e23);

	t = sk_st_find(f, "f16");
	CHECK(shape_is(t, 1, (int64_t[]){ 4 }) && t->dtype == SK_DT_F16 && t->nbytes == 8);
	const float f16[] = { 1.0f, -0.5f, 65504.0f, 5.9604644775390625e-08f };
	for (int i = 0; t && i < 4; i++)
		CHECK(sk_f16_to_f32(rd_u16(t->data, i)) == f16[i]);

	t = sk_st_find(f, "bf16");
	CHECK(shape_is(t, 2, (int64_t[]){ 2, 2 }) && t->dtype == SK_DT_BF16 && t->nbytes == 8);
	const float bf16[] = { 1.0f, -2.0f, 3.140625f, 0.0078125f };
	for (int i = 0; t && i < 4; i++)
		CHECK(sk_bf16_to_f32(rd_u16(t->data, i)) == bf16[i]);

	t = sk_st_find(f, "scalar");
	CHECK(t && t->ndim == 0 && t->nbytes == 4 && rd_f32(t->data, 0) == 42.25f);
	CHECK(t && sk_tensor_view_numel(t) == 1);

	t = sk_st_find(f, "empty");
	CHECK(shape_is(t, 2, (int64_t[]){ 0, 3 }) && t->nbytes == 0 && t->dtype == SK_DT_F32);
	CHECK(t && sk_tensor_view_numel(t) == 0);

	t = sk_st_find(f, "model.layers.0.mlp.down_proj.weight");
	CHECK(t && rd_f32(t->data, 0) == -0.125f);
	sk_st_close(f);
}

TEST(reference_file_integer_types)
{
	sk_st_file *f = open_reference();
	CHECK(f != NULL);
	if (!f)
		return;
	const sk_tensor_view *t = sk_st_find(f, "i64");
	CHECK(t && t->dtype == SK_DT_I64 && rd_i64(t->data, 0) == INT64_MIN &&
	      rd_i64(t->data, 1) == 1234567890123LL);
	t = sk_st_find(f, "i32");
	CHECK(t && t->dtype == SK_DT_I32 && rd_i32(t->data, 0) == INT32_MIN && rd_i32(t->data, 1) == 7 &&
	      rd_i32(t->data, 2) == INT32_MAX);
	t = sk_st_find(f, "i16");
	CHECK(t && t->dtype == SK_DT_I16 && (int16_t)rd_u16(t->data, 0) == -32768 &&
	      (int16_t)rd_u16(t->data, 1) == 321);
	t = sk_st_find(f, "i8");
	CHECK(t && t->dtype == SK_DT_I8 && t->nbytes == 3);
	CHECK(t && ((const int8_t *)t->data)[0] == -128 && ((const int8_t *)t->data)[2] == 127);
	t = sk_st_find(f, "u8");
	CHECK(t && t->dtype == SK_DT_U8 && memcmp(t->data, "\x00\x01\xc8\xff", 4) == 0);
	t = sk_st_find(f, "bool");
	CHECK(t && t->dtype == SK_DT_BOOL && memcmp(t->data, "\x01\x00\x01", 3) == 0);
	t = sk_st_find(f, "u16");
	CHECK(t && t->dtype == SK_DT_U16 && rd_u16(t->data, 0) == 65535);
	t = sk_st_find(f, "u32");
	CHECK(t && t->dtype == SK_DT_U32 && (uint32_t)rd_i32(t->data, 0) == 4000000000u);
	t = sk_st_find(f, "u64");
	CHECK(t && t->dtype == SK_DT_U64 && (uint64_t)rd_i64(t->data, 0) == UINT64_MAX);
	sk_st_close(f);
}

TEST(reference_file_metadata_order_lookup)
{
	sk_st_file *f = open_reference();
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(sk_st_metadata(f, "format") && strcmp(sk_st_metadata(f, "format"), "pt") == 0);
	CHECK(sk_st_metadata(f, "note") && strcmp(sk_st_metadata(f, "note"), "sokhan test") == 0);
	CHECK(sk_st_metadata(f, "absent") == NULL);
	CHECK_EQ_INT(sk_st_metadata_count(f), 2);
	/* Tensors come in data order, views point into one contiguous mapping. */
	for (size_t i = 1; i < sk_st_count(f); i++) {
		const sk_tensor_view *a = sk_st_tensor(f, i - 1), *b = sk_st_tensor(f, i);
		CHECK((const char *)a->data + a->nbytes == (const char *)b->data);
		CHECK(sk_st_find(f, b->name) == b);
		CHECK(strstr(b->file, "reference.safetensors") != NULL);
	}
	CHECK(sk_st_tensor(f, sk_st_count(f)) == NULL);
	CHECK(sk_st_find(f, "nope") == NULL && sk_st_find(f, "") == NULL);
	sk_st_close(f);
}

/* Every proper prefix of a valid file is rejected cleanly (each copied into
 * an exactly sized buffer so ASan sees any overread), as is one extra byte. */
TEST(truncated_prefixes)
{
	size_t len = 0;
	uint8_t *full = slurp(sk_test_path("tests/fixtures/safetensors/reference.safetensors"), &len);
	CHECK(full && len > 100);
	if (!full)
		return;
	int accepted = 0;
	for (size_t n = 0; n < len; n++) {
		uint8_t *b = malloc(n ? n : 1);
		memcpy(b, full, n);
		sk_st_file *f = sk_st_open_mem(b, n, MEMNAME);
		if (f || strncmp(sk_error(), MEMNAME ": ", strlen(MEMNAME) + 2) != 0)
			accepted++;
		sk_st_close(f);
		free(b);
	}
	CHECK_EQ_INT(accepted, 0);
	uint8_t *longer = malloc(len + 1);
	memcpy(longer, full, len);
	longer[len] = 0x55;
	CHECK(sk_st_open_mem(longer, len + 1, MEMNAME) == NULL && strstr(sk_error(), "after the end"));
	sk_st_file *f = sk_st_open_mem(full, len, MEMNAME);
	CHECK(f != NULL);
	sk_st_close(f);
	/* The mmap path too: a truncated copy on disk. */
	spit(tmp_path("trunc.safetensors"), full, len - 3);
	CHECK(sk_st_open(tmp_path("trunc.safetensors")) == NULL && strstr(sk_error(), "trunc.safetensors: "));
	spit(tmp_path("empty.safetensors"), "", 0);
	CHECK(sk_st_open(tmp_path("empty.safetensors")) == NULL && strstr(sk_error(), "too short"));
	CHECK(sk_st_open(tmp_path("missing.safetensors")) == NULL && strstr(sk_error(), "missing.safetensors"));
	free(longer);
	free(full);
}

/* ---- hand-built headers ---- */

TEST(good_headers)
{
	uint8_t *b;
	sk_st_file *f = good_case("{}", 0, &b);
	CHECK(f && sk_st_count(f) == 0 && sk_st_find(f, "a") == NULL);
	sk_st_close(f);
	free(b);

	f = good_case("{\"__metadata__\":{\"format\":\"pt\",\"x\":\"\"}}     ", 0, &b);
	CHECK(f && sk_st_count(f) == 0 && strcmp(sk_st_metadata(f, "x"), "") == 0);
	CHECK(f && strcmp(sk_st_metadata_key(f, 0), "format") == 0);
	sk_st_close(f);
	free(b);

	/* Scalar F64, an empty tensor between others, an unaligned F32. */
	static const char hdr[] = "{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
		      "\"e\":{\"dtype\":\"F32\",\"shape\":[4,0],\"data_offsets\":[8,8]},"
		      "\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[8,9]},"
		      "\"z\":{\"dtype\":\"BF16\",\"shape\":[0,4294967296,4294967296],\"data_offsets\":[9,9]},"
		      "\"w\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[9,13]}}";
	f = good_case(hdr, 13, &b);
	CHECK(f && sk_st_count(f) == 5);
	if (f) {
		size_t hlen = 8 + strlen(hdr);
		const sk_tensor_view *s = sk_st_find(f, "s"), *u = sk_st_find(f, "u"), *w = sk_st_find(f, "w");
		/* Zero copy: views point into the caller's buffer. */
		CHECK(s && (const uint8_t *)s->data == b + hlen && s->ndim == 0);
		CHECK(u && (const uint8_t *)u->data == b + hlen + 8 && *(const uint8_t *)u->data == (uint8_t)(8 * 37 + 11));
		CHECK(w && (const uint8_t *)w->data == b + hlen + 9 && w->nbytes == 4);
		CHECK(shape_is(sk_st_find(f, "e"), 2, (int64_t[]){ 4, 0 }));
		CHECK(sk_st_find(f, "z") && sk_st_find(f, "z")->nbytes == 0);
		CHECK(strcmp(sk_st_tensor(f, 0)->name, "s") == 0 && strcmp(sk_st_tensor(f, 4)->name, "w") == 0);
	}
	sk_st_close(f);
	free(b);

	/* Names may hold any UTF-8 and JSON escapes. */
	f = good_case("{\"a\\\"b\\u00e9\\/\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, &b);
	CHECK(f && sk_st_find(f, "a\"b\xc3\xa9/") != NULL);
	sk_st_close(f);
	free(b);
}

#define T1(dt, shape, offs) "{\"a\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":" offs "}}"
#define ENT(name, dt, shape, offs) "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":" offs "}"

TEST(bad_header_syntax)
{
	CHECK(bad_case("{\"a\":", 0, "not valid JSON"));
	CHECK(bad_case("[1,2]", 0, "does not start with '{'"));
	CHECK(bad_case(" {}", 0, "does not start with '{'"));
	CHECK(bad_case("", 0, "does not start with '{'"));
	CHECK(bad_case("{}x", 0, "other than spaces"));
	CHECK(bad_case("{}\n", 0, "other than spaces"));
	CHECK(bad_case("{} {}", 0, "other than spaces"));
	CHECK(bad_case("{\"a\":1", 0, "not valid JSON"));
	CHECK(bad_case("{\"\xff\":{}}", 0, "not valid JSON"));
	CHECK(bad_case("{\"a\xc3\":{}}", 0, "not valid JSON"));
	CHECK(bad_case("{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
		       "not valid JSON"));
	CHECK(bad_case("{'a':1}", 0, "not valid JSON"));
	/* Raw NUL inside the header. */
	static const char nul_hdr[] = "{\"a\":\0}";
	size_t len;
	uint8_t *b = image(nul_hdr, sizeof nul_hdr - 1, 0, &len);
	CHECK(sk_st_open_mem(b, len, MEMNAME) == NULL && strstr(sk_error(), "not valid JSON"));
	free(b);
	/* Trailing NUL padding instead of spaces. */
	static const char nul_pad[] = "{}\0\0";
	b = image(nul_pad, sizeof nul_pad - 1, 0, &len);
	CHECK(sk_st_open_mem(b, len, MEMNAME) == NULL && strstr(sk_error(), "other than spaces"));
	free(b);
}

TEST(bad_duplicates_and_fields)
{
	CHECK(bad_case("{" ENT("a", "U8", "[1]", "[0,1]") "," ENT("a", "U8", "[1]", "[1,2]") "}", 2, "duplicate"));
	CHECK(bad_case("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
		       "duplicate"));
	CHECK(bad_case("{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", 0, "duplicate"));
	CHECK(bad_case("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate"));
	CHECK(bad_case("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "missing field 'dtype'"));
	CHECK(bad_case("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "missing field 'shape'"));
	CHECK(bad_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "missing field 'data_offsets'"));
	CHECK(bad_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8,
		       "unexpected field 'x'"));
	CHECK(bad_case("{\"a\":{}}", 0, "missing field"));
	CHECK(bad_case("{\"a\":1}", 0, "entry is not an object"));
	CHECK(bad_case("{\"a\":[1]}", 0, "entry is not an object"));
	CHECK(bad_case("{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "empty name"));
	CHECK(bad_case("{\"__metadata__\":\"x\"}", 0, "__metadata__ is not an object"));
	CHECK(bad_case("{\"__metadata__\":[]}", 0, "__metadata__ is not an object"));
	CHECK(bad_case("{\"__metadata__\":{\"a\":1}}", 0, "value of 'a' is not a string"));
	CHECK(bad_case("{\"__metadata__\":{\"a\":null}}", 0, "not a string"));
}

TEST(bad_types_and_numbers)
{
	uint8_t *b;
	sk_st_file *f = good_case(T1("F32", "[2]", "[0,8]"), 8, &b);  /* the template itself is valid */
	CHECK(f != NULL);
	sk_st_close(f);
	free(b);
	CHECK(bad_case("{\"a\":{\"dtype\":1,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype is not a string"));
	CHECK(bad_case(T1("F32", "2", "[0,8]"), 8, "shape is not an array"));
	CHECK(bad_case(T1("F32", "{}", "[0,8]"), 8, "shape is not an array"));
	CHECK(bad_case(T1("F32", "[\"2\"]", "[0,8]"), 8, "non-negative integers"));
	CHECK(bad_case(T1("F32", "[2.0]", "[0,8]"), 8, "non-negative integers"));
	CHECK(bad_case(T1("F32", "[-2]", "[0,8]"), 8, "non-negative integers"));
	CHECK(bad_case(T1("F32", "[true]", "[0,8]"), 8, "non-negative integers"));
	CHECK(bad_case(T1("F32", "[[2]]", "[0,8]"), 8, "non-negative integers"));
	CHECK(bad_case(T1("F32", "[2]", "[-8,0]"), 8, "data_offsets must be two non-negative integers"));
	CHECK(bad_case(T1("F32", "[2]", "[0,-8]"), 8, "data_offsets must be"));
	CHECK(bad_case(T1("F32", "[2]", "[0,8,8]"), 8, "data_offsets must be"));
	CHECK(bad_case(T1("F32", "[2]", "[8]"), 8, "data_offsets must be"));
	CHECK(bad_case(T1("F32", "[2]", "[]"), 8, "data_offsets must be"));
	CHECK(bad_case(T1("F32", "[2]", "8"), 8, "data_offsets must be"));
	CHECK(bad_case(T1("F32", "[2]", "[0,8.0]"), 8, "data_offsets must be"));
	CHECK(bad_case(T1("F32", "[2]", "[\"0\",8]"), 8, "data_offsets must be"));
	CHECK(bad_case(T1("F32", "[1,1,1,1,1,1,1,1,2]", "[0,8]"), 8, "rank 9 exceeds"));
	/* Beyond 2^64: the JSON parser refuses the number. */
	CHECK(bad_case(T1("F32", "[18446744073709551617]", "[0,8]"), 8, "not valid JSON"));
	CHECK(bad_case(T1("F32", "[2]", "[0,18446744073709551616]"), 8, "not valid JSON"));
	CHECK(bad_case(T1("F32", "[9223372036854775808]", "[0,8]"), 8, "not valid JSON"));
	/* Products that overflow 64 bits, or whose bit count does. */
	CHECK(bad_case(T1("F32", "[4294967296,4294967296,2]", "[0,8]"), 8, "too many elements"));
	CHECK(bad_case(T1("F32", "[4294967296,4294967296,0]", "[0,0]"), 0, "too many elements"));
	CHECK(bad_case(T1("F32", "[3037000500,3037000500]", "[0,8]"), 8, "too many elements"));
	CHECK(bad_case(T1("F32", "[2305843009213693952]", "[0,8]"), 8, "too many elements"));
	CHECK(bad_case(T1("U8", "[1152921504606846975]", "[0,1152921504606846975]"), 8, "truncated"));
	CHECK(bad_case(T1("F32", "[9223372036854775807]", "[0,8]"), 8, "too many elements"));
}

TEST(bad_dtypes)
{
	CHECK(bad_case(T1("F33", "[2]", "[0,8]"), 8, "tensor 'a': unknown dtype 'F33'"));
	CHECK(bad_case(T1("f32", "[2]", "[0,8]"), 8, "unknown dtype 'f32'"));
	CHECK(bad_case(T1("", "[2]", "[0,8]"), 8, "unknown dtype ''"));
	CHECK(bad_case(T1("Q4_K", "[2]", "[0,8]"), 8, "unknown dtype"));
	CHECK(bad_case(T1("F8_E4M3", "[2]", "[0,2]"), 2, "tensor 'a': unsupported dtype F8_E4M3"));
	CHECK(bad_case(T1("F8_E5M2", "[2]", "[0,2]"), 2, "unsupported dtype F8_E5M2"));
	CHECK(bad_case(T1("F8_E8M0", "[2]", "[0,2]"), 2, "unsupported dtype"));
	CHECK(bad_case(T1("C64", "[1]", "[0,8]"), 8, "unsupported dtype C64"));
	CHECK(bad_case(T1("F4", "[2]", "[0,1]"), 1, "unsupported dtype F4"));
	CHECK(bad_case(T1("F6_E2M3", "[4]", "[0,3]"), 3, "unsupported dtype F6_E2M3"));
}

TEST(bad_offsets)
{
	/* The exact wording, which names the file, the tensor and both sizes. */
	CHECK(bad_case("{\"x\":{\"dtype\":\"BF16\",\"shape\":[3,4],\"data_offsets\":[0,20]}}", 20, ""));
	CHECK_MSG(strcmp(sk_error(), MEMNAME ": tensor 'x': shape [3, 4] of BF16 needs 24 bytes but "
				     "data_offsets span 20") == 0, "%s", sk_error());
	CHECK(bad_case(T1("F32", "[3]", "[0,8]"), 8, "needs 12 bytes but data_offsets span 8"));
	CHECK(bad_case(T1("F32", "[]", "[0,8]"), 8, "shape [] of F32 needs 4 bytes"));
	CHECK(bad_case(T1("F32", "[0]", "[0,4]"), 4, "needs 0 bytes"));
	CHECK(bad_case(T1("F32", "[2]", "[8,0]"), 8, "end before they begin"));
	/* Out of range: data missing (truncated) or left over (trailing). */
	CHECK(bad_case(T1("F32", "[2]", "[0,8]"), 4, "truncated"));
	CHECK(bad_case(T1("F32", "[2]", "[0,8]"), 0, "truncated"));
	CHECK(bad_case(T1("F32", "[2]", "[0,8]"), 12, "4 bytes after the end"));
	CHECK(bad_case("{}", 1, "1 bytes after the end"));
	CHECK(bad_case(T1("F32", "[2]", "[4,12]"), 12, "data starts at offset 4, not 0"));
	CHECK(bad_case("{" ENT("a", "F32", "[2]", "[0,8]") "," ENT("b", "F32", "[2]", "[12,20]") "}", 20,
		       "tensor 'b': data_offsets [12, 20] leave a gap after tensor 'a'"));
	CHECK(bad_case("{" ENT("a", "F32", "[2]", "[0,8]") "," ENT("b", "F32", "[2]", "[4,12]") "}", 12,
		       "tensor 'b': data_offsets [4, 12] overlap tensor 'a'"));
	CHECK(bad_case("{" ENT("a", "F32", "[2]", "[0,8]") "," ENT("b", "F32", "[2]", "[0,8]") "}", 16, "overlap"));
	/* An aliasing pair that would cover the buffer if overlaps were allowed. */
	CHECK(bad_case("{" ENT("a", "F32", "[4]", "[0,16]") "," ENT("b", "F32", "[2]", "[8,16]") "}", 16, "overlap"));
	CHECK(bad_case("{" ENT("a", "F32", "[2]", "[8,16]") "," ENT("b", "U8", "[4]", "[0,4]") "}", 16,
		       "tensor 'a': data_offsets [8, 16] leave a gap after tensor 'b'"));
	CHECK(bad_case(T1("U8", "[1]", "[18446744073709551615,0]"), 0, "not valid JSON"));
}

TEST(bad_header_length)
{
	uint8_t b[64];
	memset(b, ' ', sizeof b);
	b[8] = '{';
	b[9] = '}';
	uint64_t lens[] = { 100000001u, UINT64_MAX, (uint64_t)1 << 63, 57, 1000 };
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		for (int k = 0; k < 8; k++)
			b[k] = (uint8_t)(lens[i] >> (8 * k));
		CHECK_MSG(sk_st_open_mem(b, sizeof b, MEMNAME) == NULL && strstr(sk_error(), "header length"),
			  "length %llu: %s", (unsigned long long)lens[i], sk_error());
	}
	for (int k = 0; k < 8; k++)
		b[k] = (uint8_t)((uint64_t)56 >> (8 * k));
	sk_st_file *f = sk_st_open_mem(b, sizeof b, MEMNAME);  /* "{}" + 54 spaces, no data */
	CHECK_MSG(f != NULL && sk_st_count(f) == 0, "%s", sk_error());
	sk_st_close(f);
	CHECK(sk_st_open_mem(b, 7, MEMNAME) == NULL && strstr(sk_error(), "too short"));
	CHECK(sk_st_open_mem(NULL, 0, MEMNAME) == NULL && strstr(sk_error(), "too short"));
}

/* ---- writer ---- */

/* The same tensors as WRITER in make_fixtures.py. */
static float w_f32[6] = { -1.0f, -0.75f, -0.5f, -0.25f, 0.0f, 0.25f };
static float b_f32[2] = { 1.5f, -2.5f };
static uint16_t w_bf16[3] = { 0x3F80, 0x3F91, 0x3FA2 };
static int64_t idx[2] = { 3, -4 };
static double dval = 2.75;
static uint8_t mask[5] = { 1, 0, 1, 1, 0 };
static uint8_t q[3] = { 7, 8, 255 };
static int16_t i16[3] = { 1, -2, 3 };
static uint32_t u32[1] = { 5 };
static float he[1] = { 9.0f };

static size_t writer_entries(sk_st_entry *e)
{
	size_t n = 0;
	e[n++] = (sk_st_entry){ "w.f32", SK_DT_F32, 2, { 2, 3 }, w_f32 };
	e[n++] = (sk_st_entry){ "mask", SK_DT_BOOL, 1, { 5 }, mask };
	e[n++] = (sk_st_entry){ "b.f32", SK_DT_F32, 1, { 2 }, b_f32 };
	e[n++] = (sk_st_entry){ "w.bf16", SK_DT_BF16, 1, { 3 }, w_bf16 };
	e[n++] = (sk_st_entry){ "idx", SK_DT_I64, 1, { 2 }, idx };
	e[n++] = (sk_st_entry){ "d", SK_DT_F64, 0, { 0 }, &dval };
	e[n++] = (sk_st_entry){ "q", SK_DT_U8, 1, { 3 }, q };
	e[n++] = (sk_st_entry){ "empty", SK_DT_F16, 1, { 0 }, NULL };
	e[n++] = (sk_st_entry){ "i16", SK_DT_I16, 1, { 3 }, i16 };
	e[n++] = (sk_st_entry){ "u32", SK_DT_U32, 1, { 1 }, u32 };
	e[n++] = (sk_st_entry){ "h\xc3\xa9", SK_DT_F32, 1, { 1 }, he };
	return n;
}

TEST(writer_matches_reference_writer)
{
	sk_st_entry e[16];
	size_t n = writer_entries(e);
	const char *out = tmp_path("written.safetensors");
	CHECK(sk_st_write(out, e, n) == 0);
	size_t a_len = 0, b_len = 0;
	uint8_t *a = slurp(out, &a_len);
	uint8_t *b = slurp(sk_test_path("tests/fixtures/safetensors/writer_expected.safetensors"), &b_len);
	CHECK(a && b && a_len == b_len && a_len > 0);
	/* Byte for byte what safetensors' own serializer produced. */
	CHECK(a && b && a_len == b_len && memcmp(a, b, a_len) == 0);
	CHECK(a && a_len > 8 && a[0] % 8 == 0);
	free(a);
	free(b);
	CHECK_EQ_INT(count_tmp_files(tmp_root), 0);
}

TEST(writer_round_trip)
{
	sk_st_entry e[16];
	size_t n = writer_entries(e);
	const char *out = tmp_path("round.safetensors");
	/* Write something else first: the second write replaces it. */
	CHECK(sk_st_write(out, e, 1) == 0);
	CHECK(sk_st_write(out, e, n) == 0);
	sk_st_file *f = sk_st_open(out);
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK_EQ_INT(sk_st_count(f), n);
	CHECK(strcmp(sk_st_metadata(f, "format"), "pt") == 0);
	for (size_t i = 0; i < n; i++) {
		const sk_tensor_view *t = sk_st_find(f, e[i].name);
		CHECK(t && t->dtype == e[i].dtype && shape_is(t, e[i].ndim, e[i].shape));
		CHECK(t && (t->nbytes == 0 || memcmp(t->data, e[i].data, t->nbytes) == 0));
		/* Sorting by element size keeps every tensor aligned in the
		 * (page-aligned) mapping. */
		if (t && t->nbytes)
			CHECK((uintptr_t)t->data % (uintptr_t)sk_dtype_block_bytes(t->dtype) == 0);
	}
	CHECK(rd_f32(sk_st_find(f, "w.f32")->data, 5) == 0.25f);
	CHECK(sk_bf16_to_f32(rd_u16(sk_st_find(f, "w.bf16")->data, 0)) == 1.0f);
	/* Order: largest elements first (I64, F64 before F32 ... BOOL last). */
	CHECK(strcmp(sk_st_tensor(f, 0)->name, "idx") == 0 && strcmp(sk_st_tensor(f, n - 1)->name, "mask") == 0);
	sk_st_close(f);

	/* No tensors at all is a valid file. */
	CHECK(sk_st_write(tmp_path("none.safetensors"), e, 0) == 0);
	f = sk_st_open(tmp_path("none.safetensors"));
	CHECK(f && sk_st_count(f) == 0 && sk_st_metadata(f, "format"));
	sk_st_close(f);
}

TEST(writer_rejects_bad_entries)
{
	sk_st_entry e[3] = {
		{ "a", SK_DT_F32, 1, { 2 }, b_f32 },
		{ "a", SK_DT_F32, 1, { 2 }, b_f32 },
	};
	const char *out = tmp_path("bad.safetensors");
	CHECK(sk_st_write(out, e, 2) < 0 && strstr(sk_error(), "tensor 'a' is given twice"));
	e[1].name = "";
	CHECK(sk_st_write(out, e, 2) < 0 && strstr(sk_error(), "invalid tensor name"));
	e[1].name = "__metadata__";
	CHECK(sk_st_write(out, e, 2) < 0 && strstr(sk_error(), "invalid tensor name"));
	e[1] = (sk_st_entry){ "q", SK_DT_Q4_K, 1, { 256 }, b_f32 };
	CHECK(sk_st_write(out, e, 2) < 0 && strstr(sk_error(), "cannot be stored"));
	e[1] = (sk_st_entry){ "n", SK_DT_F32, 1, { -1 }, b_f32 };
	CHECK(sk_st_write(out, e, 2) < 0 && strstr(sk_error(), "negative dimension"));
	e[1] = (sk_st_entry){ "r", SK_DT_F32, 9, { 1 }, b_f32 };
	CHECK(sk_st_write(out, e, 2) < 0 && strstr(sk_error(), "bad rank"));
	e[1] = (sk_st_entry){ "big", SK_DT_F32, 2, { INT64_MAX, 2 }, b_f32 };
	CHECK(sk_st_write(out, e, 2) < 0 && strstr(sk_error(), "too many elements"));
	e[1] = (sk_st_entry){ "nodata", SK_DT_F32, 1, { 1 }, NULL };
	CHECK(sk_st_write(out, e, 2) < 0 && strstr(sk_error(), "no data"));
	e[1] = (sk_st_entry){ "\xff", SK_DT_F32, 1, { 1 }, b_f32 };
	CHECK(sk_st_write(out, e, 2) < 0 && strstr(sk_error(), "not valid UTF-8"));
	CHECK(sk_file_exists(out) == 0);
	CHECK(sk_st_write(tmp_path("no/such/dir/x.safetensors"), e, 1) < 0);
	CHECK_EQ_INT(count_tmp_files(tmp_root), 0);
}

/* ---- checkpoints ---- */

static float sa[2] = { 0.5f, -0.5f };
static uint16_t sb[2] = { 0x4000, 0xBF80 };  /* bf16 2.0, -1.0 */
static int64_t sc[1] = { 77 };
static uint8_t sd[3] = { 9, 8, 7 };

/* dir/model-0000{1,2}-of-00002.safetensors with a,b and c,d. */
static void make_shards(const char *dir)
{
	char p[4096];
	mkdir(dir, 0755);
	sk_st_entry s1[] = { { "a", SK_DT_F32, 1, { 2 }, sa }, { "b", SK_DT_BF16, 1, { 2 }, sb } };
	sk_st_entry s2[] = { { "c", SK_DT_I64, 1, { 1 }, sc }, { "d", SK_DT_U8, 2, { 3, 1 }, sd } };
	snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dir);
	CHECK(sk_st_write(p, s1, 2) == 0);
	snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
	CHECK(sk_st_write(p, s2, 2) == 0);
}

static void write_index(const char *dir, const char *json)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
	spit(p, json, strlen(json));
}

#define S1 "\"model-00001-of-00002.safetensors\""
#define S2 "\"model-00002-of-00002.safetensors\""

static int ckpt_fails(const char *dir, const char *needle)
{
	sk_error_clear();
	sk_st_checkpoint *c = sk_st_checkpoint_open(dir);
	int ok = c == NULL && strstr(sk_error(), needle) != NULL;
	if (!ok)
		fprintf(stderr, "  %s: expected error with '%s', got %s'%s'\n", dir, needle, c ? "success " : "",
			sk_error());
	sk_st_checkpoint_close(c);
	return ok;
}

TEST(sharded_checkpoint)
{
	const char *dir = tmp_path("shards");
	make_shards(dir);
	write_index(dir, "{\n  \"metadata\": {\n    \"total_parameters\": 8,\n    \"total_size\": 27\n  },\n"
			 "  \"weight_map\": {\n    \"a\": " S1 ",\n    \"b\": " S1 ",\n    \"c\": " S2
			 ",\n    \"d\": " S2 "\n  }\n}\n");
	sk_st_checkpoint *c = sk_st_checkpoint_open(dir);
	CHECK_MSG(c != NULL, "%s", sk_error());
	if (!c)
		return;
	CHECK_EQ_INT(sk_st_checkpoint_count(c), 4);
	CHECK_EQ_INT(sk_st_checkpoint_nfiles(c), 2);
	CHECK_EQ_INT(sk_st_checkpoint_unmapped(c), 0);
	const sk_tensor_view *a = sk_st_checkpoint_find(c, "a"), *b = sk_st_checkpoint_find(c, "b"),
			     *cc = sk_st_checkpoint_find(c, "c"), *d = sk_st_checkpoint_find(c, "d");
	CHECK(a && strstr(a->file, "model-00001-of-00002.safetensors") && rd_f32(a->data, 1) == -0.5f);
	CHECK(b && strstr(b->file, "model-00001-of-00002.safetensors") &&
	      sk_bf16_to_f32(rd_u16(b->data, 0)) == 2.0f && sk_bf16_to_f32(rd_u16(b->data, 1)) == -1.0f);
	CHECK(cc && strstr(cc->file, "model-00002-of-00002.safetensors") && rd_i64(cc->data, 0) == 77);
	CHECK(shape_is(d, 2, (int64_t[]){ 3, 1 }) && memcmp(d->data, "\x09\x08\x07", 3) == 0);
	CHECK(sk_st_checkpoint_find(c, "e") == NULL && sk_st_checkpoint_find(c, "") == NULL);
	CHECK(sk_st_checkpoint_tensor(c, 4) == NULL);
	/* Iteration: shard order, then data order within a shard. */
	CHECK(strstr(sk_st_checkpoint_tensor(c, 0)->file, "00001") && strstr(sk_st_checkpoint_tensor(c, 3)->file, "00002"));
	CHECK(sk_st_count(sk_st_checkpoint_file(c, 1)) == 2);
	sk_st_checkpoint_close(c);

	/* A tensor missing from the map is still loaded, and counted. */
	write_index(dir, "{\"weight_map\":{\"a\":" S1 ",\"b\":" S1 ",\"c\":" S2 "},\"extra\":[1]}");
	c = sk_st_checkpoint_open(dir);
	CHECK_MSG(c && sk_st_checkpoint_unmapped(c) == 1 && sk_st_checkpoint_find(c, "d"), "%s", sk_error());
	sk_st_checkpoint_close(c);
}

TEST(sharded_checkpoint_errors)
{
	const char *dir = tmp_path("bad_shards");
	make_shards(dir);
	write_index(dir, "{\"weight_map\":{\"a\":" S1 ",\"c\":" S2 ",\"x\":\"model-00003-of-00003.safetensors\"}}");
	CHECK(ckpt_fails(dir, "shard 'model-00003-of-00003.safetensors' does not exist"));
	write_index(dir, "{\"weight_map\":{\"a\":" S1 ",\"c\":" S2 ",\"e\":" S1 "}}");
	CHECK(ckpt_fails(dir, "model.safetensors.index.json: tensor 'e' is mapped to model-00001-of-00002.safetensors but is not in it"));
	write_index(dir, "{\"weight_map\":{\"a\":" S1 ",\"c\":" S1 ",\"d\":" S2 "}}");
	CHECK(ckpt_fails(dir, "tensor 'c' is mapped to model-00001-of-00002.safetensors but is in"));
	write_index(dir, "{\"weight_map\":{\"a\":" S1 ",\"a\":" S2 "}}");
	CHECK(ckpt_fails(dir, "duplicate"));
	write_index(dir, "{\"weight_map\":{\"a\":" S1 ",");
	CHECK(ckpt_fails(dir, "not valid JSON"));
	write_index(dir, "{\"metadata\":{}}");
	CHECK(ckpt_fails(dir, "no weight_map"));
	write_index(dir, "[]");
	CHECK(ckpt_fails(dir, "no weight_map"));
	write_index(dir, "{\"weight_map\":{}}");
	CHECK(ckpt_fails(dir, "weight_map is empty"));
	write_index(dir, "{\"weight_map\":{\"a\":\"../model-00001-of-00002.safetensors\"}}");
	CHECK(ckpt_fails(dir, "does not name a file"));
	write_index(dir, "{\"weight_map\":{\"a\":7}}");
	CHECK(ckpt_fails(dir, "does not name a file"));
	write_index(dir, "{\"weight_map\":{\"a\":" S1 "},\"metadata\":3}");
	CHECK(ckpt_fails(dir, "metadata is not an object"));

	/* The same tensor in two shards. */
	char p[4096];
	snprintf(p, sizeof p, "%s/extra.safetensors", dir);
	sk_st_entry dup[] = { { "a", SK_DT_F32, 1, { 2 }, sa } };
	CHECK(sk_st_write(p, dup, 1) == 0);
	write_index(dir, "{\"weight_map\":{\"a\":" S1 ",\"c\":\"extra.safetensors\"}}");
	CHECK(ckpt_fails(dir, "tensor 'a' is in both"));

	/* A broken shard: its own error names it. */
	snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
	spit(p, "\x02\0\0\0\0\0\0\0{]", 10);
	write_index(dir, "{\"weight_map\":{\"a\":" S1 ",\"c\":" S2 "}}");
	CHECK(ckpt_fails(dir, "model-00002-of-00002.safetensors: header is not valid JSON"));
}

TEST(checkpoint_without_index)
{
	const char *dir = tmp_path("noindex");
	make_shards(dir);
	sk_st_checkpoint *c = sk_st_checkpoint_open(dir);
	CHECK_MSG(c && sk_st_checkpoint_count(c) == 4 && sk_st_checkpoint_nfiles(c) == 2, "%s", sk_error());
	CHECK(c && sk_st_checkpoint_find(c, "c") && rd_i64(sk_st_checkpoint_find(c, "c")->data, 0) == 77);
	sk_st_checkpoint_close(c);

	/* One file given directly. */
	char p[4096];
	snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
	c = sk_st_checkpoint_open(p);
	CHECK(c && sk_st_checkpoint_count(c) == 2 && sk_st_checkpoint_nfiles(c) == 1 &&
	      sk_st_checkpoint_find(c, "d") && !sk_st_checkpoint_find(c, "a"));
	sk_st_checkpoint_close(c);

	/* Names repeated across files. */
	snprintf(p, sizeof p, "%s/zz.safetensors", dir);
	sk_st_entry dup[] = { { "d", SK_DT_U8, 1, { 1 }, sd } };
	CHECK(sk_st_write(p, dup, 1) == 0);
	CHECK(ckpt_fails(dir, "tensor 'd' is in both"));

	const char *empty = tmp_path("emptydir");
	mkdir(empty, 0755);
	spit(tmp_path("emptydir/readme.txt"), "x", 1);
	CHECK(ckpt_fails(empty, "no .safetensors files"));
	CHECK(ckpt_fails(tmp_path("does-not-exist"), "no such file or directory"));
}

int main(void)
{
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(reference_file_float_types);
	RUN(reference_file_integer_types);
	RUN(reference_file_metadata_order_lookup);
	RUN(truncated_prefixes);
	RUN(good_headers);
	RUN(bad_header_syntax);
	RUN(bad_duplicates_and_fields);
	RUN(bad_types_and_numbers);
	RUN(bad_dtypes);
	RUN(bad_offsets);
	RUN(bad_header_length);
	RUN(writer_matches_reference_writer);
	RUN(writer_round_trip);
	RUN(writer_rejects_bad_entries);
	RUN(sharded_checkpoint);
	RUN(sharded_checkpoint_errors);
	RUN(checkpoint_without_index);
	nftw(tmp_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	TEST_EXIT();
}
