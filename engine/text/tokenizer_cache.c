/* Binary cache of a parsed tokenizer.json. Parsing Gemma's 33 MB JSON takes
 * seconds; the cache loads in milliseconds. It lives in the user's cache
 * directory (model directories may be read-only), is named and keyed by a
 * hash of the JSON file's whole content and its size (robust to copies,
 * touch and in-place edits, unlike size+mtime; hashing 33 MB costs ~10 ms),
 * is written atomically, and is validated on load (magic, version, sizes,
 * checksum, then the same checks as a fresh load); a stale or corrupt cache
 * is silently rebuilt. */
#include "engine/text/tokenizer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/i18n.h"
#include "engine/paths.h"
#include "engine/text/tokenizer_model.h"

#define SK_TOKC_MAGIC "SKTOKC\r\n"
/* Bump whenever the loaders would build something different from the same
 * file, so old caches are rebuilt rather than trusted. */
#define SK_TOKC_VERSION 1u

/* Native byte order: a cache never leaves the machine that wrote it, and the
 * magic's endian marker rejects a foreign one. */
typedef struct {
	char magic[8];
	uint32_t version;
	uint32_t endian;      /* 0x01020304 */
	uint64_t src_hash, src_size;
	uint64_t checksum;    /* of the payload */
	uint32_t n_vocab, n_merges;
	uint64_t text_len;
	int32_t bos, eos, unk, pad;
	uint32_t options;
	uint32_t reserved;
} sk_tokc_header;

/* payload: off[n_vocab + 1] (u32), merges[n_merges] (3 x i32),
 * flags[n_vocab] (u8), text[text_len] */

static int sk_payload_size(uint64_t n_vocab, uint64_t n_merges, uint64_t text_len, uint64_t *size)
{
	if (n_vocab < 1 || n_vocab > SK_TOK_MAX_VOCAB || n_merges > SK_TOK_MAX_MERGES || text_len >= UINT32_MAX)
		return -1;
	/* all terms are bounded above, so the sum cannot overflow */
	*size = (n_vocab + 1) * 4 + n_merges * sizeof(sk_tok_merge) + n_vocab + text_len;
	return 0;
}

int sk_tok_cache_write(const sk_tokenizer *t, const char *path, uint64_t src_hash, uint64_t src_size)
{
	uint64_t psize;
	if (sk_payload_size((uint64_t)t->n_vocab, t->n_merges, t->text_len, &psize) != 0)
		return sk_fail(_("%s: tokenizer too large to cache"), path);
	char *buf = malloc(sizeof(sk_tokc_header) + psize);
	if (!buf)
		return sk_fail(_("%s: out of memory"), path);
	sk_tokc_header h;
	memset(&h, 0, sizeof h);
	memcpy(h.magic, SK_TOKC_MAGIC, 8);
	h.version = SK_TOKC_VERSION;
	h.endian = 0x01020304u;
	h.src_hash = src_hash;
	h.src_size = src_size;
	h.n_vocab = (uint32_t)t->n_vocab;
	h.n_merges = t->n_merges;
	h.text_len = t->text_len;
	h.bos = t->bos;
	h.eos = t->eos;
	h.unk = t->unk;
	h.pad = t->pad;
	h.options = t->options;
	char *p = buf + sizeof h;
	size_t n_off = ((size_t)t->n_vocab + 1) * 4, n_m = (size_t)t->n_merges * sizeof(sk_tok_merge);
	memcpy(p, t->off, n_off);
	if (n_m)
		memcpy(p + n_off, t->merges, n_m);
	memcpy(p + n_off + n_m, t->flags, (size_t)t->n_vocab);
	if (t->text_len)
		memcpy(p + n_off + n_m + (size_t)t->n_vocab, t->text, t->text_len);
	h.checksum = sk_tok_hash_bytes(p, (size_t)psize, 0x5eed);
	memcpy(buf, &h, sizeof h);
	int rc = sk_write_file_atomic(path, buf, sizeof h + (size_t)psize);
	free(buf);
	return rc;
}

sk_tokenizer *sk_tok_cache_read(const char *path, uint64_t src_hash, uint64_t src_size, const char *name)
{
	sk_mapping m;
	if (sk_map_file(path, &m) != 0)
		return NULL;
	sk_tokenizer *t = NULL;
	sk_tokc_header h;
	uint64_t psize;
	if (m.len < sizeof h)
		goto out;
	memcpy(&h, m.data, sizeof h);
	if (memcmp(h.magic, SK_TOKC_MAGIC, 8) != 0 || h.version != SK_TOKC_VERSION || h.endian != 0x01020304u ||
	    h.src_hash != src_hash || h.src_size != src_size ||
	    sk_payload_size(h.n_vocab, h.n_merges, h.text_len, &psize) != 0 || m.len - sizeof h != psize)
		goto out;
	const char *p = (const char *)m.data + sizeof h;
	if (sk_tok_hash_bytes(p, (size_t)psize, 0x5eed) != h.checksum)
		goto out;
	t = sk_tok_alloc((int32_t)h.n_vocab, name);
	if (!t)
		goto out;
	size_t n_off = ((size_t)h.n_vocab + 1) * 4, n_m = (size_t)h.n_merges * sizeof(sk_tok_merge);
	t->merges = malloc(n_m ? n_m : 1);
	t->text = malloc(h.text_len ? h.text_len : 1);
	if (!t->merges || !t->text)
		goto bad;
	memcpy(t->off, p, n_off);
	if (n_m)
		memcpy(t->merges, p + n_off, n_m);
	memcpy(t->flags, p + n_off + n_m, h.n_vocab);
	if (h.text_len)
		memcpy(t->text, p + n_off + n_m + h.n_vocab, h.text_len);
	t->text_len = h.text_len;
	t->n_merges = h.n_merges;
	t->bos = h.bos;
	t->eos = h.eos;
	t->unk = h.unk;
	t->pad = h.pad;
	t->options = h.options;
	if (sk_tok_finish(t) == 0)
		goto out;
bad:
	sk_tokenizer_free(t);
	t = NULL;
out:
	sk_unmap_file(&m);
	return t;
}

sk_tokenizer *sk_tokenizer_load(const char *path)
{
	sk_mapping m;
	if (sk_map_file(path, &m) != 0)
		return NULL;
	uint64_t size = m.len;
	uint64_t hash = sk_tok_hash_bytes(m.data, m.len, 0);
	char dir[4096], cpath[4200];
	int have_cache = sk_cache_dir("tokenizers", dir, sizeof dir) == 0;
	if (have_cache) {
		snprintf(cpath, sizeof cpath, "%s/%016" PRIx64 "-%" PRIu64 ".v%u.tok", dir, hash, size,
		         SK_TOKC_VERSION);
		sk_tokenizer *t = sk_tok_cache_read(cpath, hash, size, path);
		if (t) {
			sk_unmap_file(&m);
			return t;
		}
	}
	sk_error_clear();
	sk_tokenizer *t = sk_tok_from_json(m.data ? m.data : "", m.len, path);
	sk_unmap_file(&m);
	/* a cache that cannot be written only costs time next run */
	if (t && have_cache && sk_tok_cache_write(t, cpath, hash, size) != 0)
		sk_error_clear();
	return t;
}
