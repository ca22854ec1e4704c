/*  vdgx_bench.c - `vdgx bench`: N generate jobs at concurrency C over some models, each
    followed to its end like `vdgx wait`; prints latency percentiles (submit to final state),
    throughput, time to first progress (submit to the first progress seen while running) and
    the model load times the broker measured meanwhile (mmi.metrics,
    vdgx_model_load_seconds). Jobs are sent with no_cache so each one really runs.

    Threads: C of them; thread t runs jobs t, t+C, t+2C.. and writes only those jobs' slots,
    which the main thread reads after joining, so nothing is shared while they run.
*/
#include <czmq.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include "vdgx_cli.h"
#include "vdgx_stats.h"

#define S_MAX_MODELS 16
#define S_MAX_CONCURRENCY 256

typedef struct {
    int model;                  //  index into the model list
    bool ok;                    //  completed
    bool submitted;
    double latency_s;           //  submit to final state
    double first_progress_s;    //  submit to first running progress, NAN when none seen
    char error [160];
} s_job_t;

typedef struct {
    vdgx_cli_t *cli;
    const vdgx_genreq_t *req;
    const char *const *models;
    int nmodels;
    s_job_t *jobs;
    int njobs, first, stride;
    double max_wait_s;
} s_thread_t;

typedef struct {
    int64_t t0;
    double first;
} s_watch_t;

static void
s_on_progress (const vdgx_jobstatus_t *job, void *arg)
{
    s_watch_t *watch = (s_watch_t *) arg;
    if (isnan (watch->first) && (job->state == VDGX_JOB_RUNNING || vdgx_job_state_is_final (job->state)))
        watch->first = (zclock_mono () - watch->t0) / 1000.0;
}

static void *
s_worker (void *arg)
{
    s_thread_t *t = (s_thread_t *) arg;
    vdgx_client_t *client = vdgx_cli_client (t->cli);
    for (int i = t->first; client && i < t->njobs && !vdgx_cli_interrupted; i += t->stride) {
        s_job_t *job = &t->jobs [i];
        vdgx_genreq_t req;
        vdgx_genreq_init (&req);
        vdgx_genreq_copy (&req, t->req);
        snprintf (req.model, sizeof req.model, "%s", t->models [job->model]);
        if (!req.has_seed) {
            req.has_seed = true;
            req.seed = (uint64_t) i + 1;
        }
        req.no_cache = true;
        s_watch_t watch = { zclock_mono (), NAN };
        char *id = NULL;
        if (vdgx_client_submit (client, &req, &id, NULL) != 0) {
            snprintf (job->error, sizeof job->error, "submit: %s: %s",
                      vdgx_client_error_code (client), vdgx_client_error (client));
            vdgx_genreq_clear (&req);
            continue;
        }
        job->submitted = true;
        vdgx_jobstatus_t status;
        vdgx_jobstatus_init (&status);
        int64_t end = watch.t0 + (int64_t) (t->max_wait_s * 1000);
        bool done = false;
        while (!done && !vdgx_cli_interrupted && zclock_mono () < end) {
            if (vdgx_client_wait (client, id, 1000, s_on_progress, &watch, &status) == 0)
                done = true;
            else
            if (!streq (vdgx_client_error_code (client), "timeout"))
                break;
        }
        job->latency_s = (zclock_mono () - watch.t0) / 1000.0;
        job->first_progress_s = watch.first;
        if (done && status.state == VDGX_JOB_COMPLETED)
            job->ok = true;
        else
        if (done)
            snprintf (job->error, sizeof job->error, "%s: %s", vdgx_job_state_name (status.state),
                      status.has_error? status.error.message: "");
        else
            snprintf (job->error, sizeof job->error, "wait: %s: %s",
                      vdgx_client_error_code (client), vdgx_client_error (client));
        vdgx_jobstatus_clear (&status);
        free (id);
        vdgx_genreq_clear (&req);
    }
    vdgx_client_destroy (&client);
    return NULL;
}

//  Load count and summed seconds of a model from an mmi.metrics reply.
static void
s_loads (json_t *metrics, const char *model, double *count, double *sum)
{
    *count = *sum = 0;
    char name [160];
    snprintf (name, sizeof name, "vdgx_model_load_seconds{model=\"%s\"}", model);
    json_t *h = json_object_get (json_object_get (metrics, "histograms"), name);
    *count = json_number_value (json_object_get (h, "count"));
    *sum = json_number_value (json_object_get (h, "sum"));
}

static json_t *
s_metrics (vdgx_client_t *client)
{
    char *text = NULL;
    if (vdgx_client_metrics (client, &text) != 0)
        return NULL;
    json_t *root = json_loads (text, 0, NULL);
    free (text);
    return root;
}

static json_t *
s_summary (vdgx_stats_t *s)
{
    if (!vdgx_stats_count (s))
        return json_null ();
    return json_pack ("{s:f,s:f,s:f,s:f,s:f}", "p50", vdgx_stats_percentile (s, 50),
                      "p90", vdgx_stats_percentile (s, 90), "p99", vdgx_stats_percentile (s, 99),
                      "mean", vdgx_stats_mean (s), "max", vdgx_stats_max (s));
}

static void
s_print_summary (const char *label, vdgx_stats_t *s)
{
    if (!vdgx_stats_count (s))
        printf ("  %-20s -\n", label);
    else
        printf ("  %-20s p50 %.3f  p90 %.3f  p99 %.3f  mean %.3f  max %.3f\n", label,
                vdgx_stats_percentile (s, 50), vdgx_stats_percentile (s, 90),
                vdgx_stats_percentile (s, 99), vdgx_stats_mean (s), vdgx_stats_max (s));
}

int
vdgx_cli_bench (vdgx_cli_t *cli, int argc, char **argv)
{
    static const struct option longopts [] = {
        { "size", required_argument, NULL, 0 }, { "frames", required_argument, NULL, 0 },
        { "seconds", required_argument, NULL, 0 }, { "fps", required_argument, NULL, 0 },
        { "steps", required_argument, NULL, 0 }, { "guidance", required_argument, NULL, 0 },
        { "shift", required_argument, NULL, 0 }, { "sampler", required_argument, NULL, 0 },
        { "seed", required_argument, NULL, 0 }, { "negative", required_argument, NULL, 0 },
        { "precision", required_argument, NULL, 0 }, { "priority", required_argument, NULL, 0 },
        { "jobs", required_argument, NULL, 'n' }, { "concurrency", required_argument, NULL, 'c' },
        { "model", required_argument, NULL, 'm' }, { "prompt", required_argument, NULL, 'p' },
        { "json", no_argument, NULL, 'j' }, { "max-wait", required_argument, NULL, 'W' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
    };
    vdgx_genreq_t req;
    vdgx_genreq_init (&req);
    const char *models [S_MAX_MODELS];
    int nmodels = 0;
    unsigned long njobs = 10, conc = 2;
    double max_wait = 600;
    bool json = false;
    const char *prompt = "a red fox running through snow, benchmark clip";
    int c, index, rc = VDGX_EXIT_USAGE;
    optind = 0;
    while ((c = getopt_long (argc, argv, "n:c:m:p:h", longopts, &index)) != -1) {
        if (c == 0) {
            if (vdgx_cli_genreq_option ("bench", &req, longopts [index].name, optarg))
                goto done;
        }
        else if (c == 'n') {
            if (vdgx_cli_parse_uint ("bench", "-n", optarg, 1, 100000, &njobs))
                goto done;
        }
        else if (c == 'c') {
            if (vdgx_cli_parse_uint ("bench", "-c", optarg, 1, S_MAX_CONCURRENCY, &conc))
                goto done;
        }
        else if (c == 'm') {
            if (!vdgx_model_name_valid (optarg) || nmodels == S_MAX_MODELS) {
                fprintf (stderr, "vdgx bench: --model: '%s' is not a model name (or over %d)\n",
                         optarg, S_MAX_MODELS);
                goto done;
            }
            models [nmodels++] = optarg;
        }
        else if (c == 'p') prompt = optarg;
        else if (c == 'j') json = true;
        else if (c == 'W') {
            if (vdgx_cli_parse_double ("bench", "--max-wait", optarg, 1, 1e7, &max_wait))
                goto done;
        }
        else if (c == 'h') {
            printf ("usage: vdgx bench [-n N] [-c C] [--model M]... [--prompt P] [--json]\n"
                    "                  [--max-wait S] [generate options]\n");
            rc = 0;
            goto done;
        }
        else
            goto done;
    }
    if (optind != argc) {
        fprintf (stderr, "vdgx bench: unexpected argument '%s'\n", argv [optind]);
        goto done;
    }
    req.prompt = strdup (prompt);
    snprintf (req.model, sizeof req.model, "%s", nmodels? models [0]: "x");
    {
        vdgx_error_t err;
        vdgx_error_init (&err);
        if (vdgx_genreq_validate (&req, &err)) {
            fprintf (stderr, "vdgx bench: invalid request: %s: %s\n", err.field, err.message);
            goto done;
        }
    }
    vdgx_client_t *client = vdgx_cli_client (cli);
    if (!client)
        goto done;
    //  Default models: every model with a live worker.
    json_t *listed = NULL;
    if (!nmodels) {
        char *text = NULL;
        if (vdgx_client_models (client, &text) != 0) {
            rc = vdgx_cli_fail (client, "bench");
            vdgx_client_destroy (&client);
            goto done;
        }
        listed = json_loads (text, 0, NULL);
        free (text);
        size_t i;
        json_t *m;
        json_array_foreach (json_object_get (listed, "models"), i, m) {
            const char *name = json_string_value (json_object_get (m, "name"));
            if (name && json_integer_value (json_object_get (m, "workers")) > 0
            &&  nmodels < S_MAX_MODELS)
                models [nmodels++] = name;
        }
        if (!nmodels) {
            fprintf (stderr, "vdgx bench: no model has a live worker (vdgx models)\n");
            rc = VDGX_EXIT_NOT_FOUND;
            json_decref (listed);
            vdgx_client_destroy (&client);
            goto done;
        }
    }
    json_t *before = s_metrics (client);
    s_job_t *jobs = calloc (njobs, sizeof *jobs);
    for (unsigned long i = 0; i < njobs; i++)
        jobs [i].model = (int) (i % nmodels);
    if (conc > njobs)
        conc = njobs;
    pthread_t threads [S_MAX_CONCURRENCY];
    s_thread_t args [S_MAX_CONCURRENCY];
    if (!json)
        fprintf (stderr, "bench: %lu jobs at concurrency %lu over %d model(s)...\n", njobs, conc, nmodels);
    int64_t t0 = zclock_mono ();
    unsigned long started = 0;
    for (unsigned long t = 0; t < conc; t++) {
        args [t] = (s_thread_t) { cli, &req, models, nmodels, jobs, (int) njobs, (int) t,
                                  (int) conc, max_wait };
        if (pthread_create (&threads [t], NULL, s_worker, &args [t]) != 0)
            break;
        started++;
    }
    for (unsigned long t = 0; t < started; t++)
        pthread_join (threads [t], NULL);
    double wall = (zclock_mono () - t0) / 1000.0;
    json_t *after = s_metrics (client);

    //  Figures, overall and per model.
    vdgx_stats_t *lat = vdgx_stats_new (), *first = vdgx_stats_new ();
    int completed = 0, failed = 0;
    const char *first_error = NULL;
    for (unsigned long i = 0; i < njobs; i++) {
        if (jobs [i].ok) {
            completed++;
            vdgx_stats_add (lat, jobs [i].latency_s);
        }
        else {
            failed++;
            if (!first_error)
                first_error = jobs [i].error;
        }
        if (jobs [i].submitted)
            vdgx_stats_add (first, jobs [i].first_progress_s);
    }
    json_t *out = json_object ();
    json_object_set_new (out, "jobs", json_integer ((json_int_t) njobs));
    json_object_set_new (out, "concurrency", json_integer ((json_int_t) conc));
    json_object_set_new (out, "completed", json_integer (completed));
    json_object_set_new (out, "failed", json_integer (failed));
    json_object_set_new (out, "wall_s", json_real (wall));
    json_object_set_new (out, "throughput_jobs_per_s", json_real (wall > 0? completed / wall: 0));
    json_object_set_new (out, "latency_s", s_summary (lat));
    json_object_set_new (out, "first_progress_s", s_summary (first));
    if (first_error)
        json_object_set_new (out, "first_error", json_string (first_error));
    json_t *per = json_object ();
    if (!json) {
        printf ("bench: %lu jobs, concurrency %lu: %d completed, %d failed in %.2f s\n",
                njobs, conc, completed, failed, wall);
        printf ("  throughput           %.3f jobs/s (%.1f jobs/min)\n",
                wall > 0? completed / wall: 0, wall > 0? 60 * completed / wall: 0);
        s_print_summary ("latency (s)", lat);
        s_print_summary ("first progress (s)", first);
        if (first_error)
            printf ("  first error          %s\n", first_error);
    }
    for (int m = 0; m < nmodels; m++) {
        vdgx_stats_t *ml = vdgx_stats_new ();
        int mjobs = 0, mok = 0;
        for (unsigned long i = 0; i < njobs; i++)
            if (jobs [i].model == m) {
                mjobs++;
                if (jobs [i].ok) {
                    mok++;
                    vdgx_stats_add (ml, jobs [i].latency_s);
                }
            }
        double c0, s0, c1, s1;
        s_loads (before, models [m], &c0, &s0);
        s_loads (after, models [m], &c1, &s1);
        double loads = c1 - c0, load_mean = loads > 0? (s1 - s0) / loads: NAN;
        json_t *mj = json_pack ("{s:i,s:i,s:o,s:i}", "jobs", mjobs, "completed", mok,
                                "latency_s", s_summary (ml), "loads", (int) loads);
        json_object_set_new (mj, "load_s_mean", isnan (load_mean)? json_null (): json_real (load_mean));
        json_object_set_new (per, models [m], mj);
        if (!json) {
            printf ("  model %s: %d/%d completed, loads %d", models [m], mok, mjobs, (int) loads);
            if (loads > 0)
                printf (" (mean %.3f s)", load_mean);
            printf ("\n");
            char label [32];
            snprintf (label, sizeof label, "  latency (s)");
            s_print_summary (label, ml);
        }
        vdgx_stats_destroy (&ml);
    }
    json_object_set_new (out, "models", per);
    if (json) {
        char *text = json_dumps (out, JSON_COMPACT | JSON_REAL_PRECISION (6));
        printf ("%s\n", text);
        free (text);
    }
    json_decref (out);
    vdgx_stats_destroy (&lat);
    vdgx_stats_destroy (&first);
    json_decref (before);
    json_decref (after);
    free (jobs);
    json_decref (listed);
    vdgx_client_destroy (&client);
    rc = vdgx_cli_interrupted? VDGX_EXIT_INTERRUPTED: failed? VDGX_EXIT_JOB_FAILED: 0;
done:
    vdgx_genreq_clear (&req);
    return rc;
}
