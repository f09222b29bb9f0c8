/* The file side of training: PEFT adapter directories (written, read back
 * with sk_lora_load, compared bit for bit; the committed PEFT-written
 * fixture rewritten), atomic directory replacement, checkpoints (save,
 * discovery, crashes simulated mid-save, retention), the metrics log (cut
 * on resume, torn lines) and the SVG chart. PEFT itself loads the written
 * adapters in tests/fixtures/check_peft_adapter.py. */
#include <dirent.h>
#include <jansson.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/train/adapter_write.h"
#include "engine/format/atomic_dir.h"
#include "engine/train/checkpoint.h"
#include "engine/model/config.h"
#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/model/lora.h"
#include "engine/train/metrics.h"
#include "engine/format/safetensors.h"
#include "engine/train/svg_plot.h"
#include "tests/test.h"

#define G3N "tests/fixtures/hf/tiny-gemma3n"

static sk_config cfg;
static char root[] = "/tmp/sk_ckpt_test.XXXXXX";
static int ntmp;

/* A fresh directory name under root (not created). */
static const char *tmpname(const char *tag)
{
	static char buf[8][512];
	static int k;
	char *b = buf[k++ % 8];
	snprintf(b, 512, "%s/%s%d", root, tag, ntmp++);
	return b;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (float)((double)(rng_state >> 11) / 9007199254740992.0 - 0.5);
}

static void dims(int layer, int m, int32_t *in, int32_t *out)
{
	int h = cfg.hidden_size, q = cfg.num_heads * cfg.head_dim, kv = cfg.num_kv_heads * cfg.head_dim,
	    ff = cfg.intermediate_size[layer];
	int ins[7] = { h, h, h, q, h, h, ff }, outs[7] = { q, kv, kv, h, ff, ff, h };
	*in = ins[m];
	*out = outs[m];
}

/* Random pairs for the modules in mask, every layer; k/v of the KV-shared
 * layers left out as the trainer does (they never run). */
typedef struct {
	sk_adapter_pair p[SK_MAX_LAYERS * SK_LORA_NMOD];
	size_t n;
	float *buf[SK_MAX_LAYERS * SK_LORA_NMOD * 2];
} pairset;

static void make_pairs(pairset *ps, unsigned mask, int r)
{
	memset(ps, 0, sizeof *ps);
	for (int l = 0; l < cfg.num_layers; l++)
		for (int m = 0; m < SK_LORA_NMOD; m++) {
			if (!(mask & (1u << m)))
				continue;
			if ((m == SK_LORA_K || m == SK_LORA_V) && l >= sk_config_first_kv_shared(&cfg))
				continue;
			sk_adapter_pair *p = &ps->p[ps->n];
			p->layer = l;
			p->module = (sk_lora_module)m;
			dims(l, m, &p->in, &p->out);
			float *A = malloc(sizeof(float) * (size_t)(r * p->in));
			float *B = malloc(sizeof(float) * (size_t)(r * p->out));
			for (int i = 0; i < r * p->in; i++)
				A[i] = rnd();
			for (int i = 0; i < r * p->out; i++)
				B[i] = rnd() * 0.1f;
			p->A = A;
			p->B = B;
			ps->buf[2 * ps->n] = A;
			ps->buf[2 * ps->n + 1] = B;
			ps->n++;
		}
}

static void free_pairs(pairset *ps)
{
	for (size_t i = 0; i < 2 * ps->n; i++)
		free(ps->buf[i]);
	ps->n = 0;
}

/* Loads dir with sk_lora_load and checks it holds exactly these pairs. */
static void check_loads_as(const char *dir, const pairset *ps, int r, float scale)
{
	sk_lora *l = sk_lora_load(dir, &cfg);
	CHECK_MSG(l != NULL, "%s", sk_error());
	if (!l)
		return;
	CHECK_EQ_INT(sk_lora_rank(l), r);
	CHECK_EQ_INT(sk_lora_pair_count(l), (long long)ps->n);
	CHECK_EQ_INT(sk_lora_ignored_count(l), 0);
	for (size_t i = 0; i < ps->n; i++) {
		const sk_adapter_pair *p = &ps->p[i];
		const sk_lora_pair *q = sk_lora_get(l, p->layer, p->module);
		CHECK(q != NULL);
		if (!q)
			continue;
		CHECK_EQ_INT(q->in, p->in);
		CHECK_EQ_INT(q->out, p->out);
		CHECK_NEAR(q->scale, scale, 1e-6);
		CHECK(memcmp(q->A, p->A, sizeof(float) * (size_t)(r * p->in)) == 0);
		CHECK(memcmp(q->B, p->B, sizeof(float) * (size_t)(r * p->out)) == 0);
	}
	sk_lora_free(l);
}

static json_t *load_json(const char *dir, const char *file)
{
	char p[1024];
	snprintf(p, sizeof p, "%s/%s", dir, file);
	return json_load_file(p, 0, NULL);
}

/* Names in root's directory `dir` starting with prefix. */
static int count_prefix(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	if (d)
		closedir(d);
	return n;
}

TEST(adapter_roundtrip_text_layout)
{
	pairset *ps = malloc(sizeof *ps);
	make_pairs(ps, 0x7f, 4);
	CHECK_EQ_INT(ps->n, 6 * 7 - 2 * 2);
	sk_adapter_info info = { 4, 8, 0.0, 0, "tiny-gemma3n", SK_ADAPTER_KEYS_TEXT };
	const char *dir = tmpname("adapter");
	CHECK_MSG(sk_adapter_write(dir, &info, ps->p, ps->n) == 0, "%s", sk_error());
	check_loads_as(dir, ps, 4, 2.0f);

	/* the keys and the file metadata PEFT expects */
	char path[1024];
	snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
	sk_st_file *st = sk_st_open(path);
	CHECK(st != NULL);
	if (st) {
		CHECK_EQ_INT(sk_st_count(st), 2 * ps->n);
		const sk_tensor_view *t = sk_st_find(st, "base_model.model.model.layers.2.mlp.down_proj.lora_A.weight");
		CHECK(t && t->dtype == SK_DT_F32 && t->shape[0] == 4 && t->shape[1] == cfg.intermediate_size[2]);
		CHECK(sk_st_find(st, "base_model.model.model.layers.5.self_attn.k_proj.lora_A.weight") == NULL);
		CHECK(sk_st_metadata(st, "format") && strcmp(sk_st_metadata(st, "format"), "pt") == 0);
		sk_st_close(st);
	}
	json_t *c = load_json(dir, "adapter_config.json");
	CHECK(c != NULL);
	CHECK(strcmp(json_string_value(json_object_get(c, "peft_type")), "LORA") == 0);
	CHECK(strcmp(json_string_value(json_object_get(c, "task_type")), "CAUSAL_LM") == 0);
	CHECK(strcmp(json_string_value(json_object_get(c, "bias")), "none") == 0);
	CHECK(strcmp(json_string_value(json_object_get(c, "base_model_name_or_path")), "tiny-gemma3n") == 0);
	CHECK(json_is_true(json_object_get(c, "inference_mode")));
	CHECK(json_is_true(json_object_get(c, "init_lora_weights")));
	CHECK(json_is_false(json_object_get(c, "fan_in_fan_out")));
	CHECK(json_is_false(json_object_get(c, "use_rslora")));
	CHECK(json_is_null(json_object_get(c, "modules_to_save")));
	CHECK_EQ_INT(json_integer_value(json_object_get(c, "r")), 4);
	CHECK_EQ_INT(json_integer_value(json_object_get(c, "lora_alpha")), 8);
	CHECK(json_is_real(json_object_get(c, "lora_dropout")));
	/* k/v stop before the KV-shared layers 4 and 5 */
	CHECK(strcmp(json_string_value(json_object_get(c, "target_modules")),
		     "model\\.layers\\.(\\d+\\.(self_attn\\.(q_proj|o_proj)|mlp\\.(gate_proj|up_proj|down_proj))|"
		     "(0|1|2|3)\\.self_attn\\.(k_proj|v_proj))") == 0);
	json_decref(c);
	snprintf(path, sizeof path, "%s/README.md", dir);
	CHECK(sk_file_exists(path));
	CHECK_EQ_INT(count_prefix(root, "adapter") , 1); /* no .tmp- or .old- sibling left */
	free_pairs(ps);
	free(ps);
}

TEST(adapter_roundtrip_multimodal_rslora)
{
	pairset *ps = malloc(sizeof *ps);
	make_pairs(ps, 1u << SK_LORA_GATE | 1u << SK_LORA_UP | 1u << SK_LORA_DOWN, 2);
	sk_adapter_info info = { 2, 4, 0.05, 1, NULL, SK_ADAPTER_KEYS_MULTIMODAL };
	const char *dir = tmpname("mm");
	CHECK_MSG(sk_adapter_write(dir, &info, ps->p, ps->n) == 0, "%s", sk_error());
	check_loads_as(dir, ps, 2, (float)(4.0 / sqrt(2.0)));
	char path[1024];
	snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
	sk_st_file *st = sk_st_open(path);
	CHECK(st && sk_st_find(st, "base_model.model.model.language_model.layers.0.mlp.up_proj.lora_B.weight"));
	sk_st_close(st);
	json_t *c = load_json(dir, "adapter_config.json");
	CHECK(json_is_true(json_object_get(c, "use_rslora")));
	CHECK(json_is_null(json_object_get(c, "base_model_name_or_path")));
	CHECK_NEAR(json_real_value(json_object_get(c, "lora_dropout")), 0.05, 1e-12);
	CHECK(strcmp(json_string_value(json_object_get(c, "target_modules")),
		     "model\\.language_model\\.layers\\.\\d+\\.mlp\\.(gate_proj|up_proj|down_proj)") == 0);
	json_decref(c);
	free_pairs(ps);
	free(ps);
}

/* The PEFT-written fixture, loaded, written back, loaded again: identical. */
TEST(adapter_rewrite_peft_fixture)
{
	char src[1024];
	snprintf(src, sizeof src, "%s", sk_test_path(G3N "/ref/adapter_all"));
	sk_lora *l = sk_lora_load(src, &cfg);
	CHECK_MSG(l != NULL, "%s", sk_error());
	if (!l)
		return;
	pairset *ps = malloc(sizeof *ps);
	memset(ps, 0, sizeof *ps);
	for (int layer = 0; layer < cfg.num_layers; layer++)
		for (int m = 0; m < SK_LORA_NMOD; m++) {
			const sk_lora_pair *q = sk_lora_get(l, layer, (sk_lora_module)m);
			if (q)
				ps->p[ps->n++] = (sk_adapter_pair){ layer, (sk_lora_module)m, q->A, q->B, q->in, q->out };
		}
	CHECK_EQ_INT(ps->n, 38);
	sk_adapter_info info = { sk_lora_rank(l), 8, 0, 0, "tiny-gemma3n", SK_ADAPTER_KEYS_TEXT };
	const char *dir = tmpname("rewrite");
	CHECK_MSG(sk_adapter_write(dir, &info, ps->p, ps->n) == 0, "%s", sk_error());
	check_loads_as(dir, ps, 4, 2.0f);
	/* the tensors equal the fixture's bytes */
	char a[1100], b[1100];
	snprintf(a, sizeof a, "%s/adapter_model.safetensors", src);
	snprintf(b, sizeof b, "%s/adapter_model.safetensors", dir);
	sk_st_file *fa = sk_st_open(a), *fb = sk_st_open(b);
	CHECK(fa && fb);
	int same = 0;
	for (size_t i = 0; fa && fb && i < sk_st_count(fb); i++) {
		const sk_tensor_view *tb = sk_st_tensor(fb, i), *ta = sk_st_find(fa, tb->name);
		same += ta && ta->nbytes == tb->nbytes && memcmp(ta->data, tb->data, ta->nbytes) == 0;
	}
	CHECK_EQ_INT(same, 76);
	sk_st_close(fa);
	sk_st_close(fb);
	/* for tests/fixtures/check_peft_adapter.py: both key layouts */
	const char *keep = getenv("SK_WRITE_ADAPTERS_TO");
	if (keep && *keep) {
		char out[1100];
		snprintf(out, sizeof out, "%s/text", keep);
		CHECK_MSG(sk_adapter_write(out, &info, ps->p, ps->n) == 0, "%s", sk_error());
		info.keys = SK_ADAPTER_KEYS_MULTIMODAL;
		snprintf(out, sizeof out, "%s/multimodal", keep);
		CHECK_MSG(sk_adapter_write(out, &info, ps->p, ps->n) == 0, "%s", sk_error());
		check_loads_as(out, ps, 4, 2.0f);
	}
	free(ps);
	sk_lora_free(l);
}

TEST(adapter_replace_keeps_one_directory)
{
	pairset *ps = malloc(sizeof *ps);
	sk_adapter_info info = { 2, 16, 0, 0, "x", SK_ADAPTER_KEYS_TEXT };
	const char *dir = tmpname("replace");
	for (int round = 0; round < 3; round++) {
		sk_atomic_dir_set_no_exchange(round == 2); /* the rename-away fallback too */
		make_pairs(ps, 1u << SK_LORA_Q, 2);
		CHECK_MSG(sk_adapter_write(dir, &info, ps->p, ps->n) == 0, "%s", sk_error());
		check_loads_as(dir, ps, 2, 8.0f);
		free_pairs(ps);
	}
	sk_atomic_dir_set_no_exchange(0);
	CHECK_EQ_INT(count_prefix(root, "replace"), 1);
	free(ps);
}

TEST(adapter_refusals_leave_old_directory)
{
	pairset *ps = malloc(sizeof *ps);
	make_pairs(ps, 1u << SK_LORA_O, 2);
	sk_adapter_info info = { 2, 4, 0, 0, "x", SK_ADAPTER_KEYS_TEXT };
	const char *dir = tmpname("refuse");
	CHECK(sk_adapter_write(dir, &info, ps->p, ps->n) == 0);
	float saved = ps->buf[3][1];
	ps->buf[3][1] = NAN;
	CHECK(sk_adapter_write(dir, &info, ps->p, ps->n) == -1);
	CHECK(strstr(sk_error(), "non-finite") != NULL);
	ps->buf[3][1] = saved;
	sk_adapter_pair dup[2] = { ps->p[0], ps->p[0] };
	CHECK(sk_adapter_write(dir, &info, dup, 2) == -1);
	CHECK(strstr(sk_error(), "twice") != NULL);
	CHECK(sk_adapter_write(dir, &info, ps->p, 0) == -1);
	info.r = 0;
	CHECK(sk_adapter_write(dir, &info, ps->p, ps->n) == -1);
	info.r = 2;
	check_loads_as(dir, ps, 2, 2.0f); /* the first write is intact */
	CHECK_EQ_INT(count_prefix(root, "refuse"), 1);
	free_pairs(ps);
	free(ps);
}

TEST(target_regex_matches_what_is_written)
{
	sk_adapter_pair p[4] = {
		{ 0, SK_LORA_Q, NULL, NULL, 1, 1 },
		{ 2, SK_LORA_Q, NULL, NULL, 1, 1 },
		{ 7, SK_LORA_DOWN, NULL, NULL, 1, 1 },
		{ 1, SK_LORA_V, NULL, NULL, 1, 1 },
	};
	char *re = sk_adapter_target_regex(p, 4, SK_ADAPTER_KEYS_MULTIMODAL);
	CHECK(re && strcmp(re, "model\\.language_model\\.layers\\.((0|2)\\.self_attn\\.(q_proj)|1\\.self_attn\\.(v_proj)|"
			       "7\\.mlp\\.(down_proj))") == 0);
	/* through the loader's own matcher (PEFT's re.fullmatch semantics) */
	char json[1024];
	json_t *s = json_string(re);
	char *q = json_dumps(s, JSON_ENCODE_ANY);
	snprintf(json, sizeof json, "{\"peft_type\":\"LORA\",\"r\":1,\"lora_alpha\":1,\"target_modules\":%s}", q);
	free(q);
	json_decref(s);
	sk_lora_config lc;
	CHECK_MSG(sk_lora_config_parse(json, strlen(json), "re", &lc) == 0, "%s", sk_error());
	CHECK(sk_lora_config_targets(&lc, "model.language_model.layers.2.self_attn.q_proj"));
	CHECK(sk_lora_config_targets(&lc, "model.language_model.layers.7.mlp.down_proj"));
	CHECK(!sk_lora_config_targets(&lc, "model.language_model.layers.1.self_attn.q_proj"));
	CHECK(!sk_lora_config_targets(&lc, "model.language_model.layers.12.self_attn.q_proj"));
	CHECK(!sk_lora_config_targets(&lc, "model.audio_tower.conformer.0.attention.attn.q_proj"));
	sk_lora_config_free(&lc);
	free(re);
}

/* ---- checkpoints ---- */

typedef struct {
	int calls;
	int fail, crash;
	size_t bytes;
} opt_ctx;

static int save_opt(void *ctx, const char *dir)
{
	opt_ctx *o = ctx;
	o->calls++;
	if (o->fail)
		return sk_fail("%s: simulated optimizer failure", dir);
	char p[1024];
	snprintf(p, sizeof p, "%s/optimizer.bin", dir);
	FILE *f = fopen(p, "wb");
	if (!f)
		return -1;
	for (size_t i = 0; i < o->bytes; i++)
		putc((int)(i * 7 + 3) & 0xff, f);
	if (o->crash) /* half the file on disk, then the process dies */
		_exit(3);
	return fclose(f) == 0 ? 0 : -1;
}

static char log_text[8192];
static void log_line(void *ctx, const char *line)
{
	(void)ctx;
	strncat(log_text, line, sizeof log_text - strlen(log_text) - 2);
	strcat(log_text, "\n");
}

typedef struct {
	pairset ps;
	sk_adapter_info info;
	sk_trainer_state st;
	unsigned char rng_a[32], rng_b[5];
	int64_t hsteps[4];
	double hloss[4];
	opt_ctx oc;
	sk_checkpoint ck;
} ckpt_fixture;

static void fixture_init(ckpt_fixture *f)
{
	memset(f, 0, sizeof *f);
	make_pairs(&f->ps, 1u << SK_LORA_Q | 1u << SK_LORA_UP, 2);
	f->info = (sk_adapter_info){ 2, 4, 0, 0, "tiny-gemma3n", SK_ADAPTER_KEYS_MULTIMODAL };
	for (int i = 0; i < 32; i++)
		f->rng_a[i] = (unsigned char)(i * 37 + 1);
	memcpy(f->rng_b, "\x00\xff\x10\x7f\x80", 5);
	snprintf(f->st.rng[0].name, sizeof f->st.rng[0].name, "data");
	f->st.rng[0].data = f->rng_a;
	f->st.rng[0].len = 32;
	snprintf(f->st.rng[1].name, sizeof f->st.rng[1].name, "dropout");
	f->st.rng[1].data = f->rng_b;
	f->st.rng[1].len = 5;
	f->st.nrng = 2;
	f->st.options = json_pack("{s:i,s:f,s:s,s:b}", "rank", 2, "lr", 2e-4, "data", "train.jsonl", "packing", 1);
	for (int i = 0; i < 4; i++) {
		f->hsteps[i] = 7 + i;
		f->hloss[i] = 2.5 - 0.25 * i;
	}
	f->hloss[2] = NAN;
	f->st.loss_steps = f->hsteps;
	f->st.losses = f->hloss;
	f->st.nloss = 4;
	f->st.epoch = 0.75;
	f->st.data_epoch = 0;
	f->st.data_pos = 123;
	f->st.tokens_seen = 99999;
	f->st.elapsed_s = 12.5;
	f->oc.bytes = 4096;
	f->ck = (sk_checkpoint){ &f->info, f->ps.p, f->ps.n, save_opt, &f->oc, &f->st };
}

static void fixture_free(ckpt_fixture *f)
{
	json_decref(f->st.options);
	free_pairs(&f->ps);
}

static int save_at(ckpt_fixture *f, const char *run, int64_t step)
{
	f->st.step = step;
	f->st.data_pos = 100 + step;
	int rc = sk_checkpoint_save(run, &f->ck, NULL);
	if (rc)
		fprintf(stderr, "  save %lld: %s\n", (long long)step, sk_error());
	return rc;
}

TEST(checkpoint_save_resume_state)
{
	ckpt_fixture *f = malloc(sizeof *f);
	fixture_init(f);
	const char *run = tmpname("run");
	char *dir = NULL;
	int64_t step;
	CHECK_EQ_INT(sk_checkpoint_find_latest(run, &dir, &step, NULL, NULL), 0); /* no run yet */
	CHECK(save_at(f, run, 10) == 0 && save_at(f, run, 20) == 0 && save_at(f, run, 5) == 0);
	CHECK_EQ_INT(f->oc.calls, 3);
	CHECK_EQ_INT(sk_checkpoint_find_latest(run, &dir, &step, NULL, NULL), 1);
	CHECK_EQ_INT(step, 20);
	CHECK(dir && strstr(dir, "/checkpoint-20") != NULL);
	check_loads_as(dir, &f->ps, 2, 2.0f); /* the checkpoint is a PEFT adapter directory too */
	sk_trainer_state st;
	CHECK_MSG(sk_checkpoint_read_state(dir, &st) == 0, "%s", sk_error());
	CHECK_EQ_INT(st.step, 20);
	CHECK_EQ_INT(st.data_pos, 120);
	CHECK_EQ_INT(st.tokens_seen, 99999);
	CHECK_NEAR(st.epoch, 0.75, 0);
	CHECK_NEAR(st.elapsed_s, 12.5, 0);
	CHECK_EQ_INT(st.nrng, 2);
	CHECK(strcmp(st.rng[0].name, "data") == 0 && st.rng[0].len == 32 && memcmp(st.rng[0].data, f->rng_a, 32) == 0);
	CHECK(strcmp(st.rng[1].name, "dropout") == 0 && st.rng[1].len == 5 && memcmp(st.rng[1].data, f->rng_b, 5) == 0);
	CHECK(json_equal(st.options, f->st.options));
	CHECK_EQ_INT(st.nloss, 4);
	CHECK(st.nloss == 4 && st.loss_steps[3] == 10 && st.losses[1] == 2.25 && isnan(st.losses[2]));
	sk_trainer_state_free(&st);
	free(dir);
	/* final adapter */
	CHECK(sk_checkpoint_save_final(run, &f->info, f->ps.p, f->ps.n) == 0);
	char ad[1024];
	snprintf(ad, sizeof ad, "%s/adapter", run);
	check_loads_as(ad, &f->ps, 2, 2.0f);
	fixture_free(f);
	free(f);
}

static void corrupt(const char *run, const char *ck, const char *file, const char *text)
{
	char p[1024];
	snprintf(p, sizeof p, "%s/%s/%s", run, ck, file);
	FILE *fp = fopen(p, text ? "wb" : "ab");
	if (fp) {
		fputs(text ? text : "x", fp);
		fclose(fp);
	}
}

TEST(checkpoint_crashes_are_ignored)
{
	ckpt_fixture *f = malloc(sizeof *f);
	fixture_init(f);
	const char *run = tmpname("crash");
	CHECK(save_at(f, run, 30) == 0);
	/* a real crash mid-save: the child dies inside the optimizer callback */
	pid_t pid = fork();
	if (pid == 0) {
		f->oc.crash = 1;
		save_at(f, run, 40);
		_exit(0);
	}
	int ws = 0;
	waitpid(pid, &ws, 0);
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 3);
	CHECK_EQ_INT(count_prefix(run, "checkpoint-40.tmp-"), 1);
	/* newer directories, each broken in one way */
	char p[1024];
	CHECK(save_at(f, run, 50) == 0);
	snprintf(p, sizeof p, "%s/checkpoint-50/%s", run, SK_CKPT_MARKER);
	unlink(p);
	CHECK(save_at(f, run, 60) == 0);
	corrupt(run, "checkpoint-60", SK_CKPT_STATE_FILE, "{\"format\": \"sokhan-trainer-state\", \"step\": 6");
	CHECK(save_at(f, run, 70) == 0);
	corrupt(run, "checkpoint-70", "optimizer.bin", NULL); /* size differs from the recorded one */
	CHECK(save_at(f, run, 80) == 0);
	snprintf(p, sizeof p, "%s/checkpoint-80", run);
	char p2[1024];
	snprintf(p2, sizeof p2, "%s/checkpoint-090", run); /* leading zero: not a name we write */
	CHECK(rename(p, p2) == 0);
	CHECK(save_at(f, run, 95) == 0);
	snprintf(p, sizeof p, "%s/checkpoint-95", run);
	snprintf(p2, sizeof p2, "%s/checkpoint-99", run); /* state says step 95 */
	CHECK(rename(p, p2) == 0);
	CHECK(save_at(f, run, 97) == 0);
	snprintf(p, sizeof p, "%s/checkpoint-97/adapter_model.safetensors", run);
	unlink(p);
	log_text[0] = '\0';
	char *dir = NULL;
	int64_t step = -1;
	CHECK_EQ_INT(sk_checkpoint_find_latest(run, &dir, &step, log_line, NULL), 1);
	CHECK_EQ_INT(step, 30);
	CHECK(dir && strstr(dir, "checkpoint-30"));
	free(dir);
	CHECK(strstr(log_text, "checkpoint-40.tmp-") != NULL);
	CHECK(strstr(log_text, "checkpoint-50: no 'complete' marker") != NULL);
	CHECK(strstr(log_text, "checkpoint-60/trainer_state.json") != NULL);
	CHECK(strstr(log_text, "optimizer.bin has 4097 bytes, 4096 expected") != NULL);
	CHECK(strstr(log_text, "checkpoint-090") != NULL);
	CHECK(strstr(log_text, "checkpoint-99: trainer state is for step 95") != NULL);
	CHECK(strstr(log_text, "adapter_model.safetensors is missing") != NULL);
	fprintf(stderr, "%s", log_text);
	/* left on disk for a human */
	CHECK_EQ_INT(count_prefix(run, "checkpoint-40.tmp-"), 1);
	fixture_free(f);
	free(f);
}

TEST(checkpoint_failed_save_leaves_nothing)
{
	ckpt_fixture *f = malloc(sizeof *f);
	fixture_init(f);
	const char *run = tmpname("fail");
	f->oc.fail = 1;
	CHECK(save_at(f, run, 10) == -1);
	CHECK(strstr(sk_error(), "simulated optimizer failure") != NULL);
	CHECK_EQ_INT(count_prefix(run, "checkpoint-"), 0);
	f->oc.fail = 0;
	f->st.nrng = 2;
	strcpy(f->st.rng[1].name, "data"); /* a duplicate name */
	CHECK(save_at(f, run, 10) == -1);
	CHECK_EQ_INT(count_prefix(run, "checkpoint-"), 0);
	fixture_free(f);
	free(f);
}

TEST(checkpoint_retention)
{
	ckpt_fixture *f = malloc(sizeof *f);
	fixture_init(f);
	const char *run = tmpname("keep");
	for (int s = 1; s <= 5; s++)
		CHECK(save_at(f, run, s * 100) == 0);
	CHECK(save_at(f, run, 50) == 0);
	char p[1024];
	snprintf(p, sizeof p, "%s/checkpoint-50/%s", run, SK_CKPT_MARKER);
	unlink(p); /* incomplete: not counted, not deleted */
	CHECK_EQ_INT(sk_checkpoint_prune(run, 0, NULL, NULL), 0);
	CHECK_EQ_INT(count_prefix(run, "checkpoint-"), 6);
	log_text[0] = '\0';
	CHECK_EQ_INT(sk_checkpoint_prune(run, 2, log_line, NULL), 3);
	CHECK(strstr(log_text, "removed") != NULL);
	CHECK_EQ_INT(count_prefix(run, "checkpoint-"), 3);
	snprintf(p, sizeof p, "%s/checkpoint-400", run);
	CHECK_EQ_INT(sk_is_dir(p), 1);
	snprintf(p, sizeof p, "%s/checkpoint-500", run);
	CHECK_EQ_INT(sk_is_dir(p), 1);
	snprintf(p, sizeof p, "%s/checkpoint-50", run);
	CHECK_EQ_INT(sk_is_dir(p), 1);
	CHECK_EQ_INT(sk_checkpoint_prune(run, 1, NULL, NULL), 1);
	char *dir;
	int64_t step;
	CHECK_EQ_INT(sk_checkpoint_find_latest(run, &dir, &step, NULL, NULL), 1);
	CHECK_EQ_INT(step, 500);
	free(dir);
	fixture_free(f);
	free(f);
}

/* ---- metrics ---- */

static sk_metric_rec train_rec(int64_t step)
{
	static const sk_metric_mem mem[2] = { { "weights", 1000 }, { "activations", 2000 } };
	sk_metric_rec r = { 0 };
	r.step = step;
	r.epoch = step / 10.0;
	r.loss = 3.0 - step * 0.1;
	r.lr = 1e-4 * step;
	r.grad_norm = 0.5 + step;
	r.tokens = 100 * step;
	r.tokens_per_s = 50.0;
	r.elapsed_s = step * 2.0;
	r.mem = mem;
	r.nmem = 2;
	return r;
}

TEST(metrics_write_cut_read)
{
	const char *run = tmpname("metrics");
	sk_metrics_log *m = sk_metrics_open(run, -1);
	CHECK(m != NULL);
	for (int s = 1; s <= 20 && m; s++) {
		sk_metric_rec r = train_rec(s);
		if (s == 7)
			r.loss = NAN;
		CHECK(sk_metrics_append(m, &r) == 0);
		if (s % 10 == 0) {
			sk_metric_rec e = { 0 };
			e.is_eval = 1;
			e.step = s;
			e.eval_loss = 2.0 - s * 0.01;
			e.eval_tokens = 777;
			CHECK(sk_metrics_append(m, &e) == 0);
			CHECK(sk_metrics_sync(m) == 0);
		}
	}
	CHECK(sk_metrics_close(m) == 0);
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", run, SK_METRICS_FILE);
	/* a crash mid-line */
	FILE *fp = fopen(path, "ab");
	fputs("{\"type\":\"train\",\"step\":21,\"lo", fp);
	fclose(fp);
	sk_metrics_series s;
	CHECK(sk_metrics_read(path, &s) == 0);
	CHECK_EQ_INT(s.n, 20);
	CHECK_EQ_INT(s.neval, 2);
	CHECK_EQ_INT(s.bad_lines, 1);
	CHECK(s.n == 20 && s.step[4] == 5 && fabs(s.loss[4] - 2.5) < 1e-12 && isnan(s.loss[6]) &&
	      fabs(s.lr[9] - 1e-3) < 1e-15 && fabs(s.grad_norm[19] - 20.5) < 1e-12);
	CHECK(s.neval == 2 && s.eval_step[1] == 20 && fabs(s.eval_loss[0] - 1.9) < 1e-12);
	sk_metrics_series_free(&s);
	/* one line as written: memory categories and null for NaN */
	char *text;
	size_t len;
	CHECK(sk_read_file(path, 1 << 20, &text, &len) == 0);
	CHECK(strstr(text, "{\"type\":\"train\",\"step\":7,\"epoch\":0.69999999999999996,\"loss\":null,") != NULL ||
	      strstr(text, "{\"type\":\"train\",\"step\":7,\"epoch\":0.7,\"loss\":null,") != NULL);
	CHECK(strstr(text, "\"memory\":{\"weights\":1000,\"activations\":2000}}\n") != NULL);
	CHECK(strstr(text, "{\"type\":\"eval\",\"step\":10,\"epoch\":0.0,\"eval_loss\":1.9,\"eval_tokens\":777,") != NULL);
	free(text);

	/* resume from step 12: later lines and the torn one go */
	m = sk_metrics_open(run, 12);
	CHECK(m != NULL);
	sk_metric_rec r = train_rec(13);
	r.loss = 9.5;
	CHECK(m && sk_metrics_append(m, &r) == 0);
	CHECK(sk_metrics_close(m) == 0);
	CHECK(sk_metrics_read(path, &s) == 0);
	CHECK_EQ_INT(s.n, 13);
	CHECK_EQ_INT(s.neval, 1);
	CHECK_EQ_INT(s.bad_lines, 0);
	CHECK(s.n == 13 && s.step[12] == 13 && s.loss[12] == 9.5 && s.step[11] == 12);
	sk_metrics_series_free(&s);
	/* a fresh run empties the log */
	m = sk_metrics_open(run, -1);
	CHECK(sk_metrics_close(m) == 0);
	CHECK(sk_metrics_read(path, &s) == 0);
	CHECK(s.n == 0 && s.neval == 0);
	sk_metrics_series_free(&s);
	CHECK(sk_metrics_read("/nonexistent/metrics.jsonl", &s) == -1);
}

/* ---- chart ---- */

static int count_str(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

TEST(svg_from_fixture)
{
	sk_metrics_series s;
	CHECK_MSG(sk_metrics_read(sk_test_path("tests/fixtures/train/metrics.jsonl"), &s) == 0, "%s", sk_error());
	CHECK_EQ_INT(s.n, 120);
	CHECK_EQ_INT(s.neval, 4);
	CHECK_EQ_INT(s.bad_lines, 1); /* the torn tail */
	sk_plot_info info;
	size_t len;
	char *svg = sk_svg_plot_training(&s, "run <a&b>", &info, &len);
	CHECK(svg != NULL);
	if (svg) {
		CHECK_EQ_INT(strlen(svg), len);
		CHECK(strncmp(svg, "<?xml", 5) == 0 && strstr(svg, "</svg>\n"));
		CHECK(strstr(svg, "run &lt;a&amp;b&gt;") != NULL);
		CHECK_EQ_INT(count_str(svg, "<path "), 5); /* raw, EMA, eval line, lr, grad norm */
		CHECK_EQ_INT(count_str(svg, "<circle "), 4 + 1); /* 4 evals + the legend's; no isolated dots */
		CHECK(strstr(svg, "stroke-width=\"2.5\"") != NULL);
		CHECK(strstr(svg, "2 non-finite values skipped") != NULL);
		CHECK(strstr(svg, ">learning rate<") && strstr(svg, ">gradient norm<") && strstr(svg, ">eval loss<"));
		CHECK(strstr(svg, "nan") == NULL && strstr(svg, "inf") == NULL);
	}
	CHECK_EQ_INT(info.skipped, 2);
	CHECK_NEAR(info.ema_beta, 1.0 - 20.0 / 120, 1e-12);
	free(svg);
	sk_metrics_series_free(&s);
}

TEST(svg_edge_cases)
{
	int64_t step[10000];
	double loss[10000], lr[10000], gn[10000];
	sk_metrics_series s = { 0 };
	s.step = step;
	s.loss = loss;
	s.lr = lr;
	s.grad_norm = gn;
	size_t len;
	sk_plot_info info;
	/* empty */
	CHECK(sk_svg_plot_training(&s, "t", &info, &len) == NULL);
	CHECK(strstr(sk_error(), "no training records") != NULL);
	/* one point */
	s.n = 1;
	step[0] = 42;
	loss[0] = 2.0;
	lr[0] = 1e-4;
	gn[0] = 1.0;
	char *svg = sk_svg_plot_training(&s, "t", &info, &len);
	CHECK(svg && strstr(svg, "<circle") && strstr(svg, ">42<"));
	free(svg);
	/* 10,000 points with NaN and inf, thinned */
	s.n = 10000;
	for (int i = 0; i < 10000; i++) {
		step[i] = i + 1;
		loss[i] = 1.0 + 2.0 * exp(-i / 2000.0) + 0.1 * sin(i * 0.7);
		lr[i] = 2e-4 * (1 - i / 10000.0);
		gn[i] = 0.5 + 0.2 * cos(i * 0.3);
	}
	loss[100] = NAN;
	loss[5000] = INFINITY;
	gn[7] = -INFINITY;
	svg = sk_svg_plot_training(&s, "t", &info, &len);
	CHECK(svg != NULL);
	CHECK_EQ_INT(info.skipped, 3);
	CHECK_MSG(len < 400000, "%zu bytes", len);
	CHECK(svg && strstr(svg, ">10000<"));
	free(svg);
	/* a comma-decimal locale must not leak into the numbers; built here with
	 * localedef since this machine may have none installed */
	char cmd[1400], locdir[600];
	snprintf(locdir, sizeof locdir, "%s/locales", root);
	snprintf(cmd, sizeof cmd, "mkdir -p %s && localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 >/dev/null 2>&1", locdir,
		 locdir);
	char probe[32] = "";
	if (system(cmd) == 0 && setenv("LOCPATH", locdir, 1) == 0 && setlocale(LC_ALL, "de_DE.UTF-8"))
		snprintf(probe, sizeof probe, "%.1f", 0.5);
	if (strcmp(probe, "0,5") == 0) {
		svg = sk_svg_plot_training(&s, "t", &info, &len);
		CHECK(svg && strstr(svg, "0.0002") && !strstr(svg, "0,0002") && !strstr(svg, ",5 "));
		free(svg);
	} else {
		SKIP("no comma-decimal locale could be built (localedef -i de_DE needs Debian's locales)");
	}
	setlocale(LC_ALL, "C");
	unsetenv("LOCPATH");
}

int main(void)
{
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	if (sk_config_from_json(sk_test_path(G3N "/config.json"), &cfg)) {
		fprintf(stderr, "%s\n", sk_error());
		return 1;
	}
	RUN(adapter_roundtrip_text_layout);
	RUN(adapter_roundtrip_multimodal_rslora);
	RUN(adapter_rewrite_peft_fixture);
	RUN(adapter_replace_keeps_one_directory);
	RUN(adapter_refusals_leave_old_directory);
	RUN(target_regex_matches_what_is_written);
	RUN(checkpoint_save_resume_state);
	RUN(checkpoint_crashes_are_ignored);
	RUN(checkpoint_failed_save_leaves_nothing);
	RUN(checkpoint_retention);
	RUN(metrics_write_cut_read);
	RUN(svg_from_fixture);
	RUN(svg_edge_cases);
	sk_rmtree(root);
	TEST_EXIT();
}
