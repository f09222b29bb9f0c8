/* The engine thread: command queue, event queue with its wake-up pipe,
 * cancels, and the loop that owns the model. */
#include "engine/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine_internal.h"
#include "engine/error.h"
#include "engine/i18n.h"

const char *sk_engine_mem_name(int cat)
{
	static const char *names[SK_MEM_NCAT] = { "weights", "adapter", "kv_cache", "optimizer", "process",
		                                  "activations", "host_table", "device_used", "device_total" };
	return cat >= 0 && cat < SK_MEM_NCAT ? names[cat] : "?";
}

/* ---- events ---- */

static void wake(sk_engine *e)
{
	char c = 1;
	/* The pipe is non-blocking; a full pipe is already readable. */
	if (write(e->pipefd[1], &c, 1) < 0 && errno != EAGAIN)
		return;
}

static void drain(sk_engine *e)
{
	char buf[256];
	while (read(e->pipefd[0], buf, sizeof buf) > 0)
		;
}

void sk_engine_emit(sk_engine *e, sk_engine_event *ev)
{
	sk_evnode *n = calloc(1, sizeof *n);
	if (!n) {
		free(ev->text);
		return;
	}
	n->ev = *ev;
	pthread_mutex_lock(&e->mu);
	int was_empty = e->ehead == NULL;
	if (e->etail)
		e->etail->next = n;
	else
		e->ehead = n;
	e->etail = n;
	if (was_empty)
		wake(e);
	pthread_mutex_unlock(&e->mu);
}

void sk_engine_log(sk_engine *e, int level, const char *fmt, ...)
{
	sk_engine_event ev = { .type = SK_EV_LOG, .session = -1, .level = level };
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&ev.text, fmt, ap) < 0)
		ev.text = NULL;
	va_end(ap);
	sk_engine_emit(e, &ev);
}

void sk_engine_error(sk_engine *e, int session, const char *msg)
{
	sk_engine_event ev = { .type = SK_EV_ERROR, .session = session, .level = SK_LOG_ERROR };
	ev.text = strdup(msg ? msg : sk_error());
	sk_engine_emit(e, &ev);
}

int sk_engine_poll(sk_engine *e, sk_engine_event *ev)
{
	pthread_mutex_lock(&e->mu);
	sk_evnode *n = e->ehead;
	if (n) {
		e->ehead = n->next;
		if (!e->ehead)
			e->etail = NULL;
	}
	if (!e->ehead)
		drain(e);  /* under the lock, so no wake-up of a newer event is lost */
	pthread_mutex_unlock(&e->mu);
	if (!n)
		return 0;
	*ev = n->ev;
	free(n);
	return 1;
}

void sk_engine_event_free(sk_engine_event *ev)
{
	if (ev) {
		free(ev->text);
		ev->text = NULL;
	}
}

int sk_engine_fd(const sk_engine *e)
{
	return e->pipefd[0];
}

/* ---- commands ---- */

static void qcmd_free(sk_qcmd *q)
{
	if (!q)
		return;
	free(q->path);
	for (int i = 0; i < 4; i++)
		free(q->strs[i]);
	free(q->train_config);
	for (int a = 0; a < SK_ENGINE_MAX_ANSWERS; a++) {
		if (q->msgs[a])
			for (size_t i = 0; i < q->cmd.gen.answers[a].n_msgs; i++)
				free((char *)q->msgs[a][i].content);
		free(q->msgs[a]);
	}
	free(q);
}

static char *dup_or_null(const char *s, int *bad)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*bad = 1;
	return d;
}

static sk_qcmd *qcmd_copy(const sk_engine_cmd *c)
{
	sk_qcmd *q = calloc(1, sizeof *q);
	if (!q)
		return NULL;
	int bad = 0;
	q->cmd = *c;
	q->cmd.path = q->path = dup_or_null(c->path, &bad);
	q->cmd.train.data = q->strs[0] = dup_or_null(c->train.data, &bad);
	q->cmd.train.out_dir = q->strs[1] = dup_or_null(c->train.out_dir, &bad);
	q->cmd.train.recipe = q->strs[2] = dup_or_null(c->train.recipe, &bad);
	if (c->train.config) {
		q->train_config = malloc(sizeof *q->train_config);
		if (q->train_config)
			*q->train_config = *c->train.config;
		else
			bad = 1;
		q->cmd.train.config = q->train_config;
	}
	if (c->type == SK_ECMD_GENERATE) {
		if (c->gen.n_answers < 1 || c->gen.n_answers > SK_ENGINE_MAX_ANSWERS) {
			sk_fail("%s", _("engine: a generate command needs one or two answers"));
			bad = 1;
			q->cmd.gen.n_answers = 0;
		}
		for (int a = 0; !bad && a < c->gen.n_answers; a++) {
			const sk_engine_answer *ans = &c->gen.answers[a];
			if (ans->n_msgs == 0 || ans->n_msgs > 100000) {
				sk_fail("%s", _("engine: a generate command needs a conversation"));
				bad = 1;
				break;
			}
			q->msgs[a] = calloc(ans->n_msgs, sizeof(sk_chat_msg));
			if (!q->msgs[a]) {
				bad = 1;
				break;
			}
			for (size_t i = 0; i < ans->n_msgs; i++) {
				q->msgs[a][i].role = ans->msgs[i].role;
				q->msgs[a][i].content = strdup(ans->msgs[i].content ? ans->msgs[i].content : "");
				if (!q->msgs[a][i].content)
					bad = 1;
			}
			q->cmd.gen.answers[a].msgs = q->msgs[a];
		}
		for (int a = q->cmd.gen.n_answers; a < SK_ENGINE_MAX_ANSWERS; a++) {
			q->cmd.gen.answers[a].msgs = NULL;
			q->cmd.gen.answers[a].n_msgs = 0;
		}
	} else {
		for (int a = 0; a < SK_ENGINE_MAX_ANSWERS; a++) {
			q->cmd.gen.answers[a].msgs = NULL;
			q->cmd.gen.answers[a].n_msgs = 0;
		}
	}
	if (bad) {
		if (!*sk_error())
			sk_fail("%s", _("engine: out of memory"));
		qcmd_free(q);
		return NULL;
	}
	return q;
}

int sk_engine_submit(sk_engine *e, const sk_engine_cmd *cmd)
{
	sk_error_clear();
	if (cmd->type == SK_ECMD_CANCEL) {
		pthread_mutex_lock(&e->mu);
		int rc = 0;
		if (e->ncancels == e->capcancels) {
			size_t cap = e->capcancels ? e->capcancels * 2 : 16;
			sk_cancel_rec *v = realloc(e->cancels, cap * sizeof *v);
			if (!v)
				rc = sk_fail("%s", _("engine: out of memory"));
			else {
				e->cancels = v;
				e->capcancels = cap;
			}
		}
		if (rc == 0)
			e->cancels[e->ncancels++] = (sk_cancel_rec){ e->next_seq++, cmd->session };
		pthread_mutex_unlock(&e->mu);
		return rc;
	}
	sk_qcmd *q = qcmd_copy(cmd);
	if (!q)
		return -1;
	pthread_mutex_lock(&e->mu);
	if (e->stopping) {
		pthread_mutex_unlock(&e->mu);
		qcmd_free(q);
		return sk_fail("%s", _("engine: stopping"));
	}
	q->seq = e->next_seq++;
	if (e->qtail)
		e->qtail->next = q;
	else
		e->qhead = q;
	e->qtail = q;
	pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->mu);
	return 0;
}

int sk_engine_cancel(sk_engine *e, int session)
{
	sk_engine_cmd c = { .type = SK_ECMD_CANCEL, .session = session };
	return sk_engine_submit(e, &c);
}

int sk_engine_cancelled(sk_engine *e, uint64_t seq, int session)
{
	int hit = 0;
	pthread_mutex_lock(&e->mu);
	if (e->stopping)
		hit = 1;
	for (size_t i = 0; !hit && i < e->ncancels; i++)
		if (e->cancels[i].seq > seq && (e->cancels[i].session < 0 || e->cancels[i].session == session))
			hit = 1;
	pthread_mutex_unlock(&e->mu);
	return hit;
}

/* ---- the thread ---- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fill_info(sk_engine *e, sk_engine_model_info *info)
{
	memset(info, 0, sizeof *info);
	if (!e->model)
		return;
	const sk_config *c = sk_model_config(e->model);
	snprintf(info->arch, sizeof info->arch, "%s", c->model_type);
	info->n_layers = c->num_layers;
	info->hidden = c->hidden_size;
	info->vocab = sk_model_vocab(e->model);
	info->max_ctx = c->max_position_embeddings;
	info->has_tokenizer = sk_model_tokenizer(e->model) != NULL;
	const sk_lora *l = sk_engine_adapter(e);
	if (l) {
		info->adapter_rank = sk_lora_rank(l);
		info->adapter_pairs = sk_lora_pair_count(l);
		info->adapter_live = l != e->lora;
	}
	sk_model_mem mm;
	sk_model_memory(e->model, &mm);
	if (!strcmp(mm.backend, "cuda")) {
		sk_backend_info bi;
		sk_backend_probe(&bi);
		snprintf(info->device, sizeof info->device, "cuda: %.140s", bi.cuda_desc);
	} else {
		snprintf(info->device, sizeof info->device, "%s", mm.backend);
	}
}

const sk_lora *sk_engine_adapter(const sk_engine *e)
{
	const sk_lora *live = sk_engine_train_adapter(e);
	return live ? live : e->lora;
}

void sk_engine_adapter_event(sk_engine *e)
{
	sk_engine_event ev = { .type = SK_EV_ADAPTER_LOADED, .session = -1 };
	fill_info(e, &ev.info);
	const char *p = ev.info.adapter_live ? sk_engine_train_dir(e) : e->lora ? e->lora_path : NULL;
	ev.text = p ? strdup(p) : NULL;
	sk_engine_emit(e, &ev);
}

static void do_load_model(sk_engine *e, const sk_qcmd *q)
{
	if (!q->path) {
		sk_engine_error(e, -1, _("engine: load model: no path"));
		return;
	}
	sk_engine_log(e, SK_LOG_INFO, _("loading model %s"), q->path);
	double t0 = now_s();
	sk_model_opts mo = { .device = e->opts.device, .quant_nf4 = e->opts.quant_nf4, .threads = e->opts.threads };
	sk_model *m = sk_model_load(q->path, &mo);
	if (!m) {
		sk_engine_error(e, -1, NULL);
		return;
	}
	if (e->model) {
		sk_engine_drop_caches(e);
		sk_engine_train_free(e);  /* the run borrowed the old model */
		sk_model_set_adapter(e->model, NULL);
		sk_lora_free(e->lora);
		e->lora = NULL;
		free(e->lora_path);
		e->lora_path = NULL;
		sk_model_free(e->model);
	}
	e->model = m;
	free(e->model_path);
	e->model_path = strdup(q->path);
	sk_engine_event ev = { .type = SK_EV_MODEL_LOADED, .session = -1 };
	fill_info(e, &ev.info);
	ev.text = strdup(q->path);
	sk_engine_emit(e, &ev);
	sk_engine_log(e, SK_LOG_INFO, _("model loaded in %.2f s: %s, %d layers, vocabulary %d"), now_s() - t0,
	              ev.info.arch, ev.info.n_layers, ev.info.vocab);
	if (!ev.info.has_tokenizer)
		sk_engine_log(e, SK_LOG_WARN, "%s", _("the model has no tokenizer: chat is not possible"));
	else if (!sk_model_has_chat_template(m))
		sk_engine_log(e, SK_LOG_WARN, "%s", _("this model has no chat template, so it is probably a base model: it continues text rather than answering (use an instruction-tuned model, or fine-tune it)"));
}

static void do_load_adapter(sk_engine *e, const sk_qcmd *q)
{
	if (!e->model) {
		sk_engine_error(e, -1, _("load a model before an adapter"));
		return;
	}
	e->adapter_gen++; /* caches made with the old adapter are stale */
	if (q->cmd.type == SK_ECMD_UNLOAD_ADAPTER || !q->path) {
		sk_model_set_adapter(e->model, NULL);
		sk_lora_free(e->lora);
		e->lora = NULL;
		free(e->lora_path);
		e->lora_path = NULL;
		sk_engine_adapter_event(e);
		sk_engine_log(e, SK_LOG_INFO, "%s", _("adapter unloaded"));
		return;
	}
	sk_lora *l = sk_lora_load(q->path, sk_model_config(e->model));
	if (!l) {
		sk_engine_error(e, -1, NULL);
		return;
	}
	if (sk_model_set_adapter(e->model, l) != 0) {
		sk_engine_error(e, -1, NULL);
		sk_lora_free(l);
		sk_model_set_adapter(e->model, e->lora);
		return;
	}
	sk_lora_free(e->lora);
	e->lora = l;
	free(e->lora_path);
	e->lora_path = strdup(q->path);
	if (sk_engine_train_adapter(e))
		sk_engine_log(e, SK_LOG_INFO, "%s",
		              _("a training run is going: \"adapter on\" uses its live adapter until it ends"));
	sk_engine_adapter_event(e);
	sk_engine_log(e, SK_LOG_INFO, _("adapter %s loaded: rank %d, %d modules"), q->path, sk_lora_rank(l),
	              sk_lora_pair_count(l));
	if (sk_lora_ignored_count(l))
		sk_engine_log(e, SK_LOG_WARN, _("%d adapter tensors are not used by the text decoder"),
		              (int)sk_lora_ignored_count(l));
}

void sk_engine_memory(sk_engine *e)
{
	sk_engine_event ev = { .type = SK_EV_MEMORY, .session = -1 };
	sk_model_mem mm;
	sk_model_memory(e->model, &mm);
	ev.mem[SK_MEM_WEIGHTS] = mm.weights;
	ev.mem[SK_MEM_ACTIVATIONS] = mm.activations;
	ev.mem[SK_MEM_KV_CACHE] = e->gcache ? sk_gen_cache_bytes(e->gcache) : e->last_kv_bytes;
	ev.mem[SK_MEM_HOST_TABLE] = mm.host_table;
	ev.mem[SK_MEM_DEVICE_USED] = mm.device_total - mm.device_free;
	ev.mem[SK_MEM_DEVICE_TOTAL] = mm.device_total;
	const sk_lora *l = sk_engine_adapter(e);
	if (l && l != e->lora) {
		sk_engine_train_memory(e, &ev.mem[SK_MEM_ADAPTER], &ev.mem[SK_MEM_OPTIMIZER]);
	} else if (l && e->model) {
		const sk_config *c = sk_model_config(e->model);
		for (int i = 0; i < c->num_layers; i++)
			for (int m = 0; m < SK_LORA_NMOD; m++) {
				const sk_lora_pair *p = sk_lora_get(l, i, (sk_lora_module)m);
				if (p)
					ev.mem[SK_MEM_ADAPTER] += (uint64_t)p->r * ((uint64_t)p->in + (uint64_t)p->out) * 4u;
			}
	}
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		unsigned long long size, rss;
		if (fscanf(f, "%llu %llu", &size, &rss) == 2)
			ev.mem[SK_MEM_PROCESS] = rss * (uint64_t)sysconf(_SC_PAGESIZE);
		fclose(f);
	}
	sk_engine_emit(e, &ev);
}

static void run_cmd(sk_engine *e, sk_qcmd *q)
{
	sk_error_clear();
	switch (q->cmd.type) {
	case SK_ECMD_LOAD_MODEL: do_load_model(e, q); break;
	case SK_ECMD_LOAD_ADAPTER:
	case SK_ECMD_UNLOAD_ADAPTER: do_load_adapter(e, q); break;
	case SK_ECMD_GENERATE: sk_engine_run_generate(e, q); break;
	case SK_ECMD_MEMORY: sk_engine_memory(e); break;
	case SK_ECMD_REPLAY_METRICS: sk_engine_replay_metrics(e, q->path); break;
	case SK_ECMD_TRAIN_START:
	case SK_ECMD_TRAIN_PAUSE:
	case SK_ECMD_TRAIN_RESUME:
	case SK_ECMD_TRAIN_STOP:
	case SK_ECMD_EVAL: sk_engine_train_cmd(e, q); break;
	case SK_ECMD_CANCEL: break;
	}
}

static void *engine_main(void *arg)
{
	sk_engine *e = arg;
	for (;;) {
		pthread_mutex_lock(&e->mu);
		/* Chat first; training micro-steps only when nothing waits. */
		while (!e->stopping && !e->qhead && e->train_state != SK_TRAIN_RUNNING)
			pthread_cond_wait(&e->cv, &e->mu);
		if (e->stopping) {
			pthread_mutex_unlock(&e->mu);
			break;
		}
		sk_qcmd *q = e->qhead;
		if (q) {
			e->qhead = q->next;
			if (!e->qhead)
				e->qtail = NULL;
		}
		/* With the queue empty no command can be older than a cancel
		 * that still matters, except the one now being run. */
		if (!e->qhead && e->ncancels && (!q || q->cmd.type != SK_ECMD_GENERATE))
			e->ncancels = 0;
		pthread_mutex_unlock(&e->mu);
		if (q) {
			run_cmd(e, q);
			qcmd_free(q);
		} else {
			sk_engine_train_tick(e);
		}
	}
	return NULL;
}

sk_engine *sk_engine_start(const sk_engine_opts *opts)
{
	sk_engine *e = calloc(1, sizeof *e);
	if (!e) {
		sk_fail("%s", _("engine: out of memory"));
		return NULL;
	}
	if (opts)
		e->opts = *opts;
	if (pipe2(e->pipefd, O_NONBLOCK | O_CLOEXEC) != 0) {
		sk_fail(_("engine: pipe: %s"), strerror(errno));
		free(e);
		return NULL;
	}
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	e->train_state = sk_engine_can_train() ? SK_TRAIN_IDLE : SK_TRAIN_UNAVAILABLE;
	if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
		sk_fail("%s", _("engine: cannot start its thread"));
		close(e->pipefd[0]);
		close(e->pipefd[1]);
		pthread_mutex_destroy(&e->mu);
		pthread_cond_destroy(&e->cv);
		free(e);
		return NULL;
	}
	return e;
}

void sk_engine_stop(sk_engine *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->mu);
	e->stopping = 1;
	pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->mu);
	pthread_join(e->thread, NULL);
	for (sk_qcmd *q = e->qhead, *n; q; q = n) {
		n = q->next;
		qcmd_free(q);
	}
	for (sk_evnode *v = e->ehead, *n; v; v = n) {
		n = v->next;
		free(v->ev.text);
		free(v);
	}
	sk_engine_drop_caches(e);
	sk_engine_train_free(e);
	if (e->model)
		sk_model_set_adapter(e->model, NULL);
	sk_lora_free(e->lora);
	sk_model_free(e->model);
	free(e->model_path);
	free(e->lora_path);
	free(e->cancels);
	close(e->pipefd[0]);
	close(e->pipefd[1]);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cv);
	free(e);
}
