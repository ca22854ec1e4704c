/*  vdgx_promtext.c - Prometheus text exposition builder. */
#include "vdgx_promtext.h"
#include "vdgx_msg.h"
#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <math.h>

typedef struct {
    vdgx_prom_type_t type;
    zlistx_t *lines;            //  rendered sample lines (owned strings)
} s_family_t;

struct _vdgx_promtext_t {
    zhashx_t *families;         //  name -> s_family_t
    size_t dropped;
};

static const struct { const char *name; const char *help; } s_help [] = {
    { "vdgx_jobs_submitted_total", "Jobs accepted by the broker, by model." },
    { "vdgx_jobs_finished_total", "Jobs that reached a final state, by model and status." },
    { "vdgx_jobs_rejected_total", "Submits refused, by model and reason." },
    { "vdgx_jobs_requeued_total", "Jobs put back in the queue after a worker loss, by model." },
    { "vdgx_queue_depth", "Jobs waiting in the queue, by model." },
    { "vdgx_workers", "Live workers by model and state." },
    { "vdgx_job_duration_seconds", "Time from submit to the final state, by model." },
    { "vdgx_job_queue_wait_seconds", "Time jobs waited in the queue before dispatch, by model." },
    { "vdgx_phase_seconds", "Time per job phase (load, text, denoise, decode, mux), by model." },
    { "vdgx_model_load_seconds", "Model load time reported by workers, by model." },
    { "vdgx_worker_rss_bytes", "Resident memory per worker." },
    { "vdgx_worker_peak_bytes", "Peak resident memory per worker." },
    { "vdgx_worker_model_bytes", "Memory the loaded model takes per worker." },
    { "vdgx_worker_host_budget_bytes", "Host memory a worker may use (0 = unknown)." },
    { "vdgx_bridge_http_requests_total", "HTTP requests answered by the bridge, by route and status code." },
    { "vdgx_bridge_broker_requests_total", "Requests the bridge sent to the broker, by outcome." },
    { "vdgx_bridge_status_cache_hits_total", "Job status requests answered from the bridge's cache of final statuses." },
    { "vdgx_bridge_inflight_requests", "HTTP requests waiting for the broker." },
    { "vdgx_bridge_sse_streams", "Open server-sent event streams." },
    { "vdgx_bridge_up", "1 when the broker answered the metrics request." },
    { "vdgx_bridge_metrics_dropped_total", "Broker samples dropped because their names were not valid." },
    { "vdgx_bridge_image_decodes_total", "Uploaded images decoded, or refused with 503 because every decode slot was taken." },
    { "vdgx_bridge_image_decodes_waited_total", "Image decodes that waited for a slot." },
    { "vdgx_bridge_image_decodes_active", "Image decodes running now." },
    { "vdgx_budget_refused_total", "Job-service requests the broker refused for a client's byte budget (rate) or an owner's queued bytes (quota)." },
    { "vdgx_budget_refused_bytes_total", "Bytes of the requests refused for a client's byte budget." },
    { "vdgx_budget_clients", "Clients whose byte budget the broker tracks." },
    { "vdgx_unfinished_request_bytes", "Request bytes (images included) of the unfinished jobs of named owners (not the operator's)." },
};

static void
s_family_destroy (void **item_p)
{
    s_family_t *f = (s_family_t *) *item_p;
    if (f) {
        zlistx_destroy (&f->lines);
        free (f);
        *item_p = NULL;
    }
}

vdgx_promtext_t *
vdgx_promtext_new (void)
{
    vdgx_promtext_t *self = (vdgx_promtext_t *) calloc (1, sizeof (vdgx_promtext_t));
    if (self) {
        self->families = zhashx_new ();
        zhashx_set_destructor (self->families, s_family_destroy);
    }
    return self;
}

void
vdgx_promtext_destroy (vdgx_promtext_t **self_p)
{
    assert (self_p);
    vdgx_promtext_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->families);
        free (self);
        *self_p = NULL;
    }
}

static bool
s_name_ok (const char *name, size_t len)
{
    if (len == 0 || len > 200)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name [i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

//  `k="v",k2="v2"` with label names [a-zA-Z_][a-zA-Z0-9_]* and values free of raw quotes,
//  backslashes and newlines (the broker's values are model names and hex ids).
static bool
s_labels_ok (const char *p, size_t len)
{
    const char *end = p + len;
    if (p == end)
        return true;
    while (p < end) {
        const char *eq = memchr (p, '=', (size_t) (end - p));
        if (!eq || !s_name_ok (p, (size_t) (eq - p)) || strchr (":", *p) || memchr (p, ':', (size_t) (eq - p)))
            return false;
        if (eq - p >= 2 && p [0] == '_' && p [1] == '_')
            return false;       //  reserved
        p = eq + 1;
        if (p >= end || *p != '"')
            return false;
        p++;
        while (p < end && *p != '"') {
            if (*p == '\\' || *p == '\n' || (unsigned char) *p < 0x20)
                return false;
            p++;
        }
        if (p >= end)
            return false;
        p++;                    //  closing quote
        if (p < end) {
            if (*p != ',')
                return false;
            p++;
            if (p == end)
                return false;
        }
    }
    return true;
}

//  Splits key into name and label text; NULL when malformed.
static bool
s_split (const char *key, char *name, size_t name_size, const char **labels, size_t *labels_len)
{
    const char *brace = strchr (key, '{');
    size_t nlen = brace? (size_t) (brace - key): strlen (key);
    if (!s_name_ok (key, nlen) || nlen >= name_size)
        return false;
    memcpy (name, key, nlen);
    name [nlen] = 0;
    *labels = "";
    *labels_len = 0;
    if (brace) {
        size_t klen = strlen (key);
        if (key [klen - 1] != '}' || klen < nlen + 2)
            return false;
        *labels = brace + 1;
        *labels_len = klen - nlen - 2;
        if (!s_labels_ok (*labels, *labels_len))
            return false;
    }
    return true;
}

static s_family_t *
s_family (vdgx_promtext_t *self, const char *name, vdgx_prom_type_t type)
{
    s_family_t *f = (s_family_t *) zhashx_lookup (self->families, name);
    if (f)
        return f->type == type? f: NULL;
    f = (s_family_t *) calloc (1, sizeof (s_family_t));
    if (!f)
        return NULL;
    f->type = type;
    f->lines = zlistx_new ();
    zlistx_set_destructor (f->lines, (zlistx_destructor_fn *) zstr_free);
    zhashx_insert (self->families, name, f);
    return f;
}

static void
s_fmt_value (char *buf, size_t size, double v)
{
    if (isnan (v))
        snprintf (buf, size, "NaN");
    else
    if (isinf (v))
        snprintf (buf, size, v > 0? "+Inf": "-Inf");
    else
    if (v == floor (v) && fabs (v) < 1e15)
        snprintf (buf, size, "%.0f", v);
    else
        snprintf (buf, size, "%.17g", v);
}

int
vdgx_promtext_add (vdgx_promtext_t *self, vdgx_prom_type_t type, const char *key, double value)
{
    assert (self && key && type != VDGX_PROM_HISTOGRAM);
    char name [256];
    const char *labels;
    size_t llen;
    s_family_t *f = NULL;
    if (s_split (key, name, sizeof name, &labels, &llen)
    &&  !(type == VDGX_PROM_COUNTER && (value < 0 || strlen (name) < 7
                                       || strcmp (name + strlen (name) - 6, "_total"))))
        f = s_family (self, name, type);
    if (!f) {
        self->dropped++;
        return -1;
    }
    char num [40];
    s_fmt_value (num, sizeof num, value);
    char *line = llen? zsys_sprintf ("%s{%.*s} %s", name, (int) llen, labels, num)
                     : zsys_sprintf ("%s %s", name, num);
    zlistx_add_end (f->lines, line);
    return 0;
}

int
vdgx_promtext_add_histogram (vdgx_promtext_t *self, const char *key, const double *bounds,
                             const uint64_t *cumulative, size_t n, double sum)
{
    assert (self && key && (bounds || n == 0) && cumulative);
    char name [256];
    const char *labels;
    size_t llen;
    s_family_t *f = NULL;
    bool ok = s_split (key, name, sizeof name, &labels, &llen);
    for (size_t i = 0; ok && i < n; i++)
        ok = isfinite (bounds [i]) && (i == 0 || bounds [i] > bounds [i - 1])
             && (cumulative [i + 1] >= cumulative [i]);
    if (ok)
        f = s_family (self, name, VDGX_PROM_HISTOGRAM);
    if (!f) {
        self->dropped++;
        return -1;
    }
    const char *sep = llen? ",": "";
    for (size_t i = 0; i <= n; i++) {
        char le [40];
        if (i < n)
            s_fmt_value (le, sizeof le, bounds [i]);
        else
            snprintf (le, sizeof le, "+Inf");
        zlistx_add_end (f->lines, zsys_sprintf ("%s_bucket{%.*s%sle=\"%s\"} %" PRIu64, name,
                                                (int) llen, labels, sep, le, cumulative [i]));
    }
    char num [40];
    s_fmt_value (num, sizeof num, sum);
    if (llen) {
        zlistx_add_end (f->lines, zsys_sprintf ("%s_sum{%.*s} %s", name, (int) llen, labels, num));
        zlistx_add_end (f->lines, zsys_sprintf ("%s_count{%.*s} %" PRIu64, name, (int) llen, labels, cumulative [n]));
    }
    else {
        zlistx_add_end (f->lines, zsys_sprintf ("%s_sum %s", name, num));
        zlistx_add_end (f->lines, zsys_sprintf ("%s_count %" PRIu64, name, cumulative [n]));
    }
    return 0;
}

static bool
s_key_is (const msgpack_object_kv *kv, const char *name)
{
    return kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen (name)
        && memcmp (kv->key.via.str.ptr, name, kv->key.via.str.size) == 0;
}

static bool
s_num (const msgpack_object *o, double *v)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        *v = (double) o->via.u64;
    else
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *v = (double) o->via.i64;
    else
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
        *v = o->via.f64;
    else
        return false;
    return true;
}

static void
s_key_text (const msgpack_object *key, char *buf, size_t size)
{
    size_t n = key->type == MSGPACK_OBJECT_STR? key->via.str.size: 0;
    if (n >= size)
        n = 0;              //  too long to be a sane metric: dropped as "" below
    if (n)
        memcpy (buf, key->via.str.ptr, n);
    buf [n] = 0;
}

static void
s_add_hist_obj (vdgx_promtext_t *self, const char *key, const msgpack_object *h)
{
    if (h->type != MSGPACK_OBJECT_MAP) {
        self->dropped++;
        return;
    }
    const msgpack_object *buckets = NULL, *counts = NULL;
    double sum = 0;
    for (uint32_t i = 0; i < h->via.map.size; i++) {
        const msgpack_object_kv *kv = &h->via.map.ptr [i];
        if (s_key_is (kv, "buckets") && kv->val.type == MSGPACK_OBJECT_ARRAY)
            buckets = &kv->val;
        else
        if (s_key_is (kv, "counts") && kv->val.type == MSGPACK_OBJECT_ARRAY)
            counts = &kv->val;
        else
        if (s_key_is (kv, "sum"))
            s_num (&kv->val, &sum);
    }
    if (!buckets || !counts || counts->via.array.size != buckets->via.array.size + 1
    ||  buckets->via.array.size > 256) {
        self->dropped++;
        return;
    }
    size_t n = buckets->via.array.size;
    double bounds [256];
    uint64_t cum [257];
    for (size_t i = 0; i <= n; i++) {
        double v;
        if ((i < n && !s_num (&buckets->via.array.ptr [i], &bounds [i]))
        ||  counts->via.array.ptr [i].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            self->dropped++;
            return;
        }
        cum [i] = counts->via.array.ptr [i].via.u64;
        (void) v;
    }
    vdgx_promtext_add_histogram (self, key, bounds, cum, n, sum);
}

int
vdgx_promtext_add_broker_metrics (vdgx_promtext_t *self, const void *data, size_t size)
{
    assert (self);
    msgpack_unpacked result;
    vdgx_error_t err;
    if (vdgx_unpack (&result, data, size, &err))
        return -1;
    int rc = -1;
    const msgpack_object *root = &result.data;
    if (root->type == MSGPACK_OBJECT_MAP) {
        rc = 0;
        for (uint32_t i = 0; i < root->via.map.size; i++) {
            const msgpack_object_kv *kv = &root->via.map.ptr [i];
            int which = s_key_is (kv, "counters")? 0: s_key_is (kv, "gauges")? 1
                      : s_key_is (kv, "histograms")? 2: -1;
            if (which < 0 || kv->val.type != MSGPACK_OBJECT_MAP)
                continue;       //  open map: unknown keys are ignored (PROTOCOL.md 4)
            for (uint32_t j = 0; j < kv->val.via.map.size; j++) {
                const msgpack_object_kv *m = &kv->val.via.map.ptr [j];
                char key [512];
                s_key_text (&m->key, key, sizeof key);
                double v;
                if (which == 2)
                    s_add_hist_obj (self, key, &m->val);
                else
                if (s_num (&m->val, &v))
                    vdgx_promtext_add (self, which? VDGX_PROM_GAUGE: VDGX_PROM_COUNTER, key, v);
                else
                    self->dropped++;
            }
        }
    }
    msgpack_unpacked_destroy (&result);
    return rc;
}

int
vdgx_promtext_add_broker_workers (vdgx_promtext_t *self, const void *data, size_t size)
{
    assert (self);
    msgpack_unpacked result;
    vdgx_error_t err;
    if (vdgx_unpack (&result, data, size, &err))
        return -1;
    int rc = -1;
    const msgpack_object *root = &result.data;
    for (uint32_t i = 0; root->type == MSGPACK_OBJECT_MAP && i < root->via.map.size; i++) {
        const msgpack_object_kv *kv = &root->via.map.ptr [i];
        if (!s_key_is (kv, "workers") || kv->val.type != MSGPACK_OBJECT_ARRAY)
            continue;
        rc = 0;
        for (uint32_t j = 0; j < kv->val.via.array.size; j++) {
            //  Read loosely (by key): a worker map that a strict decoder would refuse for an
            //  unrelated key must not hide every worker's memory.
            const msgpack_object *w = &kv->val.via.array.ptr [j];
            char identity [128] = "", service [128] = "";
            double model = -1, budget = -1;
            for (uint32_t k = 0; w->type == MSGPACK_OBJECT_MAP && k < w->via.map.size; k++) {
                const msgpack_object_kv *f = &w->via.map.ptr [k];
                if (s_key_is (f, "identity") && f->val.type == MSGPACK_OBJECT_STR)
                    s_key_text (&f->val, identity, sizeof identity);
                else
                if (s_key_is (f, "service") && f->val.type == MSGPACK_OBJECT_STR)
                    s_key_text (&f->val, service, sizeof service);
                else
                if (s_key_is (f, "model_bytes"))
                    s_num (&f->val, &model);
                else
                if (s_key_is (f, "host_budget_bytes"))
                    s_num (&f->val, &budget);
            }
            if (!identity [0] || !service [0]) {
                self->dropped++;
                continue;
            }
            char key [400];
            if (model >= 0) {
                snprintf (key, sizeof key, "vdgx_worker_model_bytes{worker=\"%s\",model=\"%s\"}", identity, service);
                vdgx_promtext_add (self, VDGX_PROM_GAUGE, key, model);
            }
            if (budget >= 0) {
                snprintf (key, sizeof key, "vdgx_worker_host_budget_bytes{worker=\"%s\",model=\"%s\"}", identity, service);
                vdgx_promtext_add (self, VDGX_PROM_GAUGE, key, budget);
            }
        }
    }
    msgpack_unpacked_destroy (&result);
    return rc;
}

size_t
vdgx_promtext_dropped (vdgx_promtext_t *self)
{
    assert (self);
    return self->dropped;
}

static int
s_cmp_str (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

char *
vdgx_promtext_render (vdgx_promtext_t *self)
{
    assert (self);
    size_t n = zhashx_size (self->families);
    const char **names = (const char **) calloc (n + 1, sizeof (char *));
    if (!names)
        return NULL;
    size_t k = 0;
    for (void *f = zhashx_first (self->families); f; f = zhashx_next (self->families))
        names [k++] = (const char *) zhashx_cursor (self->families);
    qsort (names, k, sizeof (char *), s_cmp_str);
    zchunk_t *out = zchunk_new (NULL, 4096);
    static const char *types [] = { "counter", "gauge", "histogram" };
    for (size_t i = 0; i < k; i++) {
        s_family_t *f = (s_family_t *) zhashx_lookup (self->families, names [i]);
        const char *help = NULL;
        for (size_t h = 0; h < sizeof s_help / sizeof s_help [0] && !help; h++)
            if (strcmp (s_help [h].name, names [i]) == 0)
                help = s_help [h].help;
        char *head = zsys_sprintf ("# HELP %s %s\n# TYPE %s %s\n", names [i],
                                   help? help: "VideosDGX broker metric.", names [i], types [f->type]);
        zchunk_extend (out, head, strlen (head));
        zstr_free (&head);
        for (const char *line = (const char *) zlistx_first (f->lines); line;
             line = (const char *) zlistx_next (f->lines)) {
            zchunk_extend (out, line, strlen (line));
            zchunk_extend (out, "\n", 1);
        }
    }
    free (names);
    char *text = (char *) malloc (zchunk_size (out) + 1);
    if (text) {
        memcpy (text, zchunk_data (out), zchunk_size (out));
        text [zchunk_size (out)] = 0;
    }
    zchunk_destroy (&out);
    return text;
}

void
vdgx_promtext_test (bool verbose)
{
    printf (" * vdgx_promtext: ");
    vdgx_promtext_t *p = vdgx_promtext_new ();
    //  A broker reply as the broker packs it.
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 5);
    vdgx_pack_str (&pk, "ok");  msgpack_pack_true (&pk);
    vdgx_pack_str (&pk, "counters");
    msgpack_pack_map (&pk, 4);
    vdgx_pack_str (&pk, "vdgx_jobs_finished_total{model=\"m1\",status=\"completed\"}");
    msgpack_pack_uint64 (&pk, 3);
    vdgx_pack_str (&pk, "vdgx_jobs_finished_total{model=\"m1\",status=\"failed\"}");
    msgpack_pack_uint64 (&pk, 1);
    vdgx_pack_str (&pk, "bad name{x=\"1\"}");
    msgpack_pack_uint64 (&pk, 1);
    vdgx_pack_str (&pk, "vdgx_evil_total{x=\"a\"} 5\nvdgx_other{y=\"b\"}");
    msgpack_pack_uint64 (&pk, 1);
    vdgx_pack_str (&pk, "gauges");
    msgpack_pack_map (&pk, 1);
    vdgx_pack_str (&pk, "vdgx_queue_depth{model=\"m1\"}");
    msgpack_pack_uint64 (&pk, 2);
    vdgx_pack_str (&pk, "histograms");
    msgpack_pack_map (&pk, 1);
    vdgx_pack_str (&pk, "vdgx_job_duration_seconds{model=\"m1\"}");
    msgpack_pack_map (&pk, 4);
    vdgx_pack_str (&pk, "buckets");
    msgpack_pack_array (&pk, 2);
    msgpack_pack_double (&pk, 0.5);
    msgpack_pack_double (&pk, 1);
    vdgx_pack_str (&pk, "counts");
    msgpack_pack_array (&pk, 3);
    msgpack_pack_uint64 (&pk, 1);
    msgpack_pack_uint64 (&pk, 2);
    msgpack_pack_uint64 (&pk, 4);
    vdgx_pack_str (&pk, "count");
    msgpack_pack_uint64 (&pk, 4);
    vdgx_pack_str (&pk, "sum");
    msgpack_pack_double (&pk, 3.25);
    vdgx_pack_str (&pk, "future_key");
    msgpack_pack_nil (&pk);
    assert (vdgx_promtext_add_broker_metrics (p, sb.data, sb.size) == 0);
    msgpack_sbuffer_destroy (&sb);
    assert (vdgx_promtext_dropped (p) == 2);
    assert (vdgx_promtext_add_broker_metrics (p, "\x81", 1) == -1);     //  truncated
    assert (vdgx_promtext_add (p, VDGX_PROM_COUNTER, "vdgx_bridge_http_requests_total{route=\"/health\",code=\"200\"}", 7) == 0);
    assert (vdgx_promtext_add (p, VDGX_PROM_GAUGE, "vdgx_bridge_http_requests_total", 1) == -1);  //  type clash
    assert (vdgx_promtext_add (p, VDGX_PROM_COUNTER, "vdgx_no_suffix", 1) == -1);
    assert (vdgx_promtext_add (p, VDGX_PROM_GAUGE, "vdgx_x{a=\"1\",}", 1) == -1);
    assert (vdgx_promtext_add (p, VDGX_PROM_GAUGE, "vdgx_x{__a=\"1\"}", 1) == -1);
    assert (vdgx_promtext_add (p, VDGX_PROM_GAUGE, "vdgx_x{a=\"1\"", 1) == -1);
    assert (vdgx_promtext_add (p, VDGX_PROM_GAUGE, "vdgx_bridge_up", 1) == 0);
    char *text = vdgx_promtext_render (p);
    if (verbose)
        printf ("\n%s", text);
    assert (strstr (text, "# TYPE vdgx_jobs_finished_total counter\n"
                          "vdgx_jobs_finished_total{model=\"m1\",status=\"completed\"} 3\n"));
    assert (strstr (text, "vdgx_job_duration_seconds_bucket{model=\"m1\",le=\"0.5\"} 1\n"));
    assert (strstr (text, "vdgx_job_duration_seconds_bucket{model=\"m1\",le=\"+Inf\"} 4\n"));
    assert (strstr (text, "vdgx_job_duration_seconds_sum{model=\"m1\"} 3.25\n"));
    assert (strstr (text, "vdgx_job_duration_seconds_count{model=\"m1\"} 4\n"));
    assert (strstr (text, "# HELP vdgx_queue_depth "));
    assert (!strstr (text, "evil") && !strstr (text, "bad name"));
    //  Families sorted, each HELP/TYPE once.
    assert (strstr (text, "vdgx_bridge_up") < strstr (text, "vdgx_job_duration_seconds"));
    const char *first = strstr (text, "# TYPE vdgx_jobs_finished_total");
    assert (first && !strstr (first + 1, "# TYPE vdgx_jobs_finished_total"));
    free (text);
    vdgx_promtext_destroy (&p);
    assert (p == NULL);
    printf ("OK\n");
}
