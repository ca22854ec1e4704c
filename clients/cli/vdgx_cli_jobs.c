/*  vdgx_cli_jobs.c - `vdgx` job and introspection commands: generate, wait, status, list,
    cancel, delete, download, workers, models, unload, drain, health. */
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <time.h>
#include <unistd.h>
#include "vdgx_cli.h"
#include "vdgx_progressbar.h"
#include "vdgx_sha256.h"

#define S_GENREQ_OPTIONS \
    { "size", required_argument, NULL, 0 }, { "frames", required_argument, NULL, 0 }, \
    { "seconds", required_argument, NULL, 0 }, { "fps", required_argument, NULL, 0 }, \
    { "steps", required_argument, NULL, 0 }, { "guidance", required_argument, NULL, 0 }, \
    { "shift", required_argument, NULL, 0 }, { "sampler", required_argument, NULL, 0 }, \
    { "seed", required_argument, NULL, 0 }, { "negative", required_argument, NULL, 0 }, \
    { "precision", required_argument, NULL, 0 }, { "priority", required_argument, NULL, 0 }, \
    { "no-cache", no_argument, NULL, 0 }, { "image", required_argument, NULL, 0 }, \
    { "last-image", required_argument, NULL, 0 }

int
vdgx_cli_genreq_option (const char *cmd, vdgx_genreq_t *req, const char *opt, const char *arg)
{
    unsigned long u;
    double d;
    if (streq (opt, "size")) {
        unsigned long w, h;
        char extra;
        if (!arg || sscanf (arg, "%lux%lu%c", &w, &h, &extra) != 2 || w < 16 || h < 16
        ||  w > 4096 || h > 4096 || *arg == '-') {
            fprintf (stderr, "vdgx %s: --size: expected WxH with 16..4096 each, got '%s'\n",
                     cmd, arg? arg: "");
            return -1;
        }
        req->width = (uint32_t) w;
        req->height = (uint32_t) h;
    }
    else if (streq (opt, "frames")) {
        if (vdgx_cli_parse_uint (cmd, "--frames", arg, 1, 1025, &u))
            return -1;
        req->frames = (uint32_t) u;
    }
    else if (streq (opt, "seconds")) {
        if (vdgx_cli_parse_double (cmd, "--seconds", arg, 1e-3, 600, &d))
            return -1;
        req->has_seconds = true;
        req->seconds = d;
    }
    else if (streq (opt, "fps")) {
        if (vdgx_cli_parse_uint (cmd, "--fps", arg, 1, 120, &u))
            return -1;
        req->fps = (uint32_t) u;
    }
    else if (streq (opt, "steps")) {
        if (vdgx_cli_parse_uint (cmd, "--steps", arg, 1, 1000, &u))
            return -1;
        req->steps = (uint32_t) u;
    }
    else if (streq (opt, "guidance")) {
        if (vdgx_cli_parse_double (cmd, "--guidance", arg, 0, 100, &d))
            return -1;
        req->has_guidance = true;
        req->guidance = d;
    }
    else if (streq (opt, "shift")) {
        if (vdgx_cli_parse_double (cmd, "--shift", arg, 1e-6, 100, &d))
            return -1;
        req->has_shift = true;
        req->shift = d;
    }
    else if (streq (opt, "sampler")) {
        if (!streq (arg, "unipc") && !streq (arg, "dpm++") && !streq (arg, "euler")) {
            fprintf (stderr, "vdgx %s: --sampler: expected unipc, dpm++ or euler, got '%s'\n", cmd, arg);
            return -1;
        }
        snprintf (req->sampler, sizeof req->sampler, "%s", arg);
    }
    else if (streq (opt, "seed")) {
        char *end = NULL;
        errno = 0;
        unsigned long long s = *arg == '-'? 0: strtoull (arg, &end, 10);
        if (*arg == '-' || errno || end == arg || *end || s > (unsigned long long) INT64_MAX) {
            fprintf (stderr, "vdgx %s: --seed: expected an integer in 0..2^63-1, got '%s'\n", cmd, arg);
            return -1;
        }
        req->has_seed = true;
        req->seed = s;
    }
    else if (streq (opt, "negative")) {
        free (req->negative_prompt);
        req->negative_prompt = strdup (arg);
    }
    else if (streq (opt, "precision")) {
        if (!streq (arg, "fp32") && !streq (arg, "bf16") && !streq (arg, "fp8") && !streq (arg, "fp4")) {
            fprintf (stderr, "vdgx %s: --precision: expected fp32, bf16, fp8 or fp4, got '%s'\n", cmd, arg);
            return -1;
        }
        snprintf (req->precision, sizeof req->precision, "%s", arg);
    }
    else if (streq (opt, "priority")) {
        if (vdgx_priority_parse (arg, &req->priority)) {
            fprintf (stderr, "vdgx %s: --priority: expected high, normal or low, got '%s'\n", cmd, arg);
            return -1;
        }
    }
    else if (streq (opt, "no-cache"))
        req->no_cache = true;
    else if (streq (opt, "image") || streq (opt, "last-image")) {
        char err [400];
        if (vdgx_client_image_file (req, streq (opt, "image")? "image": "last_image", arg, err,
                                    sizeof err)) {
            fprintf (stderr, "vdgx %s: --%s: %s\n", cmd, opt, err);
            return -1;
        }
    }
    else
        return 1;
    return 0;
}

//  The request's own rules, checked here so a bad one is a usage error (exit 2) naming the
//  option rather than a broker round trip.
static int
s_validate (const char *cmd, const vdgx_genreq_t *req)
{
    vdgx_error_t err;
    vdgx_error_init (&err);
    if (vdgx_genreq_validate (req, &err) == 0)
        return 0;
    fprintf (stderr, "vdgx %s: invalid request: %s%s%s\n", cmd, err.field,
             *err.field? ": ": "", err.message);
    return -1;
}

static void
s_on_progress (const vdgx_jobstatus_t *job, void *arg)
{
    vdgx_progressbar_update ((vdgx_progressbar_t *) arg, job, zclock_mono ());
}

static void
s_print_saved (const char *path, const vdgx_jobstatus_t *job)
{
    if (job->has_result)
        printf ("saved %s (%llu bytes, %ux%u, %u frames at %u fps, %.2f s%s)\n", path,
                (unsigned long long) job->result.size, job->result.width, job->result.height,
                job->result.frames, job->result.fps, job->result.seconds,
                job->cached? ", from cache": "");
    else
        printf ("saved %s\n", path);
}

//  --stream: the output file grows as the job's chunks are ready (streaming models), so a
//  player can open it before the job ends. An attempt that starts over (the worker died)
//  starts the file over.
typedef struct {
    int fd;                     //  the output file, -1 until the first ready part
    uint64_t written;
    uint32_t attempt;
    double seconds;             //  ready seconds last reported
} s_stream_t;

//  Appends what is ready beyond what was written. final: the job completed; read to its end.
//  Returns 0, or -1 (message printed).
static int
s_stream_pull (vdgx_client_t *client, const char *id, const char *path, s_stream_t *st,
               const vdgx_jobstatus_t *job, bool final)
{
    if (!final && !job->has_ready)
        return 0;
    if (st->fd < 0) {
        st->fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (st->fd < 0) {
            fprintf (stderr, "vdgx: cannot create %s: %s\n", path, strerror (errno));
            return -1;
        }
        st->attempt = job->attempt;
    }
    if (job->attempt != st->attempt) {
        fprintf (stderr, "vdgx: job %s started over (attempt %u): %s starts over\n", id,
                 job->attempt, path);
        if (ftruncate (st->fd, 0) != 0 || lseek (st->fd, 0, SEEK_SET) != 0)
            return -1;
        st->written = 0;
        st->attempt = job->attempt;
    }
    while (true) {
        vdgx_jobreply_t rep;
        if (vdgx_client_read (client, id, st->written, VDGX_CHUNK_MAX, &rep) != 0) {
            //  e.g. the attempt was just re-queued: nothing ready now; the next round retries
            vdgx_jobreply_clear (&rep);
            return 0;
        }
        if (rep.attempt && rep.attempt != st->attempt) {
            //  started over between the status and this read: the next round sees it
            vdgx_jobreply_clear (&rep);
            return 0;
        }
        const uint8_t *p = rep.data;
        size_t left = rep.data_size;
        while (left > 0) {
            ssize_t n = write (st->fd, p, left);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                fprintf (stderr, "vdgx: writing %s: %s\n", path, strerror (errno));
                vdgx_jobreply_clear (&rep);
                return -1;
            }
            p += n;
            left -= (size_t) n;
        }
        st->written += rep.data_size;
        bool more = st->written < rep.size && rep.data_size > 0;
        vdgx_jobreply_clear (&rep);
        if (!more)
            break;
    }
    if (job->has_ready && job->ready.seconds > st->seconds && !final) {
        st->seconds = job->ready.seconds;
        fprintf (stderr, "\rstream: %.2f s ready (%llu bytes) in %s\n", job->ready.seconds,
                 (unsigned long long) st->written, path);
    }
    return 0;
}

//  Follows a job to its end with progress on stderr; downloads it to out_path (may be NULL).
static int
s_follow_stream (vdgx_cli_t *cli, vdgx_client_t *client, const char *id, const char *out_path,
                 double max_wait_s, bool stream)
{
    vdgx_progressbar_t *progress = vdgx_progressbar_new (stderr, isatty (STDERR_FILENO));
    vdgx_jobstatus_t job;
    vdgx_jobstatus_init (&job);
    int64_t end = max_wait_s > 0? zclock_mono () + (int64_t) (max_wait_s * 1000): INT64_MAX;
    int rc = -1;
    s_stream_t st = { .fd = -1 };
    //  vdgx_client_wait in slices, so that Ctrl-C and a vanished broker are noticed.
    while (rc < 0) {
        if (vdgx_cli_interrupted) {
            vdgx_progressbar_finish (progress);
            fprintf (stderr, "vdgx: interrupted; job %s goes on (vdgx wait %s, vdgx cancel %s)\n",
                     id, id, id);
            rc = VDGX_EXIT_INTERRUPTED;
            break;
        }
        int64_t left = end - zclock_mono ();
        if (left <= 0) {
            vdgx_progressbar_finish (progress);
            fprintf (stderr, "vdgx: job %s did not finish within %.0f s (still %s)\n", id,
                     max_wait_s, vdgx_job_state_name (job.state));
            rc = VDGX_EXIT_UNREACHABLE;
            break;
        }
        int slice = left < 1000? (int) left: 1000;
        if (stream && slice > 250)
            slice = 250;
        if (vdgx_client_wait (client, id, slice, s_on_progress, progress, &job) == 0) {
            vdgx_progressbar_update (progress, &job, zclock_mono ());
            vdgx_progressbar_finish (progress);
            rc = 0;
            break;
        }
        if (!streq (vdgx_client_error_code (client), "timeout")) {
            vdgx_progressbar_finish (progress);
            rc = vdgx_cli_fail (client, "wait");
            break;
        }
        //  A slice ran out: is the broker still there?
        if (vdgx_client_status (client, id, &job) != 0) {
            vdgx_progressbar_finish (progress);
            rc = vdgx_cli_fail (client, "wait");
            break;
        }
        if (stream && out_path && s_stream_pull (client, id, out_path, &st, &job, false) != 0) {
            vdgx_progressbar_finish (progress);
            rc = VDGX_EXIT_UNREACHABLE;
            break;
        }
    }
    vdgx_progressbar_destroy (&progress);
    if (stream && rc == 0 && job.state == VDGX_JOB_COMPLETED && out_path) {
        //  The rest of the file, then the whole file checked against the result's SHA-256
        //  (a mismatch, e.g. a prefix of an attempt that was replaced: download it again).
        char got [VDGX_SHA256_HEX_SIZE] = "";
        if (st.fd >= 0 && s_stream_pull (client, id, out_path, &st, &job, true) == 0
        &&  fsync (st.fd) == 0 && vdgx_sha256_file (out_path, got) == 0
        &&  job.has_result && streq (got, job.result.sha256)) {
            close (st.fd);
            st.fd = -1;
            s_print_saved (out_path, &job);
            vdgx_jobstatus_clear (&job);
            return 0;
        }
    }
    if (st.fd >= 0)
        close (st.fd);
    if (rc == 0) {
        if (job.state != VDGX_JOB_COMPLETED) {
            fprintf (stderr, "vdgx: job %s %s: %s: %s\n", id, vdgx_job_state_name (job.state),
                     job.has_error && job.error.code? job.error.code: "error",
                     job.has_error? job.error.message: "");
            rc = VDGX_EXIT_JOB_FAILED;
        }
        else
        if (out_path) {
            if (vdgx_client_result (client, id, out_path) == 0)
                s_print_saved (out_path, &job);
            else
                rc = vdgx_cli_fail (client, "download");
        }
        else
            printf ("%s completed\n", id);
    }
    vdgx_jobstatus_clear (&job);
    (void) cli;
    return rc;
}

static int
s_follow (vdgx_cli_t *cli, vdgx_client_t *client, const char *id, const char *out_path,
          double max_wait_s)
{
    return s_follow_stream (cli, client, id, out_path, max_wait_s, false);
}

static int
s_bad_usage (const char *cmd, const char *what)
{
    fprintf (stderr, "vdgx %s: %s (try vdgx --help)\n", cmd, what);
    return VDGX_EXIT_USAGE;
}

int
vdgx_cli_generate (vdgx_cli_t *cli, int argc, char **argv)
{
    static const struct option longopts [] = {
        S_GENREQ_OPTIONS,
        { "model", required_argument, NULL, 'm' }, { "output", required_argument, NULL, 'o' },
        { "detach", no_argument, NULL, 'd' }, { "max-wait", required_argument, NULL, 'W' },
        { "stream", no_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
    };
    vdgx_genreq_t req;
    vdgx_genreq_init (&req);
    const char *out = NULL;
    bool detach = false, stream = false;
    double max_wait = 0;
    int c, index, rc = VDGX_EXIT_USAGE;
    optind = 0;
    opterr = 1;
    while ((c = getopt_long (argc, argv, "m:o:h", longopts, &index)) != -1) {
        if (c == 0) {
            if (vdgx_cli_genreq_option ("generate", &req, longopts [index].name, optarg))
                goto done;
        }
        else if (c == 'm') {
            if (!vdgx_model_name_valid (optarg)) {
                fprintf (stderr, "vdgx generate: --model: '%s' is not a model name (1..64 of [a-z0-9._-])\n", optarg);
                goto done;
            }
            snprintf (req.model, sizeof req.model, "%s", optarg);
        }
        else if (c == 'o') out = optarg;
        else if (c == 'd') detach = true;
        else if (c == 's') stream = true;
        else if (c == 'W') {
            if (vdgx_cli_parse_double ("generate", "--max-wait", optarg, 0, 1e7, &max_wait))
                goto done;
        }
        else if (c == 'h') {
            printf ("usage: vdgx generate \"PROMPT\" --model M [-o out.mp4] [--stream] [options] (see vdgx --help)\n");
            rc = 0;
            goto done;
        }
        else
            goto done;
    }
    if (optind != argc - 1) {
        rc = s_bad_usage ("generate", optind >= argc? "expected a PROMPT"
                                                     : "expected one PROMPT (quote it)");
        goto done;
    }
    if (!*req.model) {
        rc = s_bad_usage ("generate", "--model is required");
        goto done;
    }
    req.prompt = strdup (argv [optind]);
    if (s_validate ("generate", &req))
        goto done;
    vdgx_client_t *client = vdgx_cli_client (cli);
    if (!client)
        goto done;
    char *id = NULL;
    vdgx_submit_info_t info;
    if (vdgx_client_submit (client, &req, &id, &info) != 0)
        rc = vdgx_cli_fail (client, "generate");
    else
    if (detach) {
        printf ("%s\n", id);
        rc = 0;
    }
    else {
        if (info.cached)
            fprintf (stderr, "job %s: served from the result cache\n", id);
        else
        if (info.state == VDGX_JOB_QUEUED)
            fprintf (stderr, "job %s queued (position %u)\n", id, info.queue_position);
        else
            fprintf (stderr, "job %s %s\n", id, vdgx_job_state_name (info.state));
        char *path = out? strdup (out): zsys_sprintf ("%s.mp4", id);
        rc = s_follow_stream (cli, client, id, path, max_wait, stream);
        zstr_free (&path);
    }
    free (id);
    vdgx_client_destroy (&client);
done:
    vdgx_genreq_clear (&req);
    return rc;
}

//  Parses `CMD ID [-o FILE] [--json] [--max-wait S]` (what each command allows) and opens
//  the client: -1 to go on (args->client is the caller's to destroy), else the exit status.
typedef struct {
    const char *id;
    const char *out;
    bool json;
    double max_wait;
    vdgx_client_t *client;
} s_idargs_t;

static int
s_parse_id (vdgx_cli_t *cli, const char *cmd, int argc, char **argv, bool allow_out,
            bool allow_json, bool allow_wait, s_idargs_t *args)
{
    static const struct option longopts [] = {
        { "output", required_argument, NULL, 'o' }, { "json", no_argument, NULL, 'j' },
        { "max-wait", required_argument, NULL, 'W' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    memset (args, 0, sizeof *args);
    int c;
    optind = 0;
    while ((c = getopt_long (argc, argv, "o:h", longopts, NULL)) != -1) {
        if (c == 'o' && allow_out) args->out = optarg;
        else if (c == 'j' && allow_json) args->json = true;
        else if (c == 'W' && allow_wait) {
            if (vdgx_cli_parse_double (cmd, "--max-wait", optarg, 0, 1e7, &args->max_wait))
                return VDGX_EXIT_USAGE;
        }
        else if (c == 'h') {
            printf ("usage: vdgx %s ID%s%s (see vdgx --help)\n", cmd, allow_out? " [-o FILE]": "",
                    allow_json? " [--json]": "");
            return 0;
        }
        else
            return s_bad_usage (cmd, c == '?'? "bad option": "option not allowed here");
    }
    if (optind != argc - 1)
        return s_bad_usage (cmd, "expected one job ID");
    args->id = argv [optind];
    if (!vdgx_job_id_valid (args->id)) {
        fprintf (stderr, "vdgx %s: '%s' is not a job id (1..64 of [A-Za-z0-9._-])\n", cmd, args->id);
        return VDGX_EXIT_USAGE;
    }
    args->client = vdgx_cli_client (cli);
    return args->client? -1: VDGX_EXIT_USAGE;
}

int
vdgx_cli_wait (vdgx_cli_t *cli, int argc, char **argv)
{
    s_idargs_t args;
    int rc = s_parse_id (cli, "wait", argc, argv, true, false, true, &args);
    if (rc >= 0)
        return rc;
    vdgx_client_t *client = args.client;
    rc = s_follow (cli, client, args.id, args.out, args.max_wait);
    vdgx_client_destroy (&client);
    return rc;
}

static void
s_time (char *buf, size_t size, double epoch)
{
    if (epoch <= 0) {
        snprintf (buf, size, "-");
        return;
    }
    time_t t = (time_t) epoch;
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (buf, size, "%Y-%m-%d %H:%M:%SZ", &tm);
}

static void
s_print_job (const vdgx_jobstatus_t *job)
{
    char created [32], started [32], finished [32];
    s_time (created, sizeof created, job->created_at);
    s_time (started, sizeof started, job->started_at);
    s_time (finished, sizeof finished, job->finished_at);
    printf ("id:        %s\nmodel:     %s\nstate:     %s\nphase:     %s %u/%u\n"
            "percent:   %.1f\n", job->id, job->model, vdgx_job_state_name (job->state),
            vdgx_phase_name (job->phase), job->step, job->steps, job->percent);
    if (job->state == VDGX_JOB_QUEUED)
        printf ("queue:     %u\n", job->queue_position);
    if (job->has_ready)
        printf ("ready:     %.2f s (%u frames, %llu bytes, downloadable while it runs)\n",
                job->ready.seconds, job->ready.frames, (unsigned long long) job->ready.bytes);
    printf ("attempt:   %u\ncreated:   %s\nstarted:   %s\nfinished:  %s\n", job->attempt,
            created, started, finished);
    if (job->has_error)
        printf ("error:     %s: %s\n", job->error.code? job->error.code: "?", job->error.message);
    if (job->has_result)
        printf ("video:     %llu bytes, %s, %ux%u, %u frames at %u fps, %.2f s%s\n",
                (unsigned long long) job->result.size, job->result.mime, job->result.width,
                job->result.height, job->result.frames, job->result.fps, job->result.seconds,
                job->cached? " (cached)": "");
    if (job->has_request && job->request.prompt)
        printf ("prompt:    %s\n", job->request.prompt);
}

int
vdgx_cli_status (vdgx_cli_t *cli, int argc, char **argv)
{
    s_idargs_t args;
    int rc = s_parse_id (cli, "status", argc, argv, false, true, false, &args);
    if (rc >= 0)
        return rc;
    vdgx_client_t *client = args.client;
    vdgx_jobstatus_t job;
    vdgx_jobstatus_init (&job);
    if (vdgx_client_status (client, args.id, &job) != 0)
        rc = vdgx_cli_fail (client, "status");
    else {
        if (args.json) {
            char *text = vdgx_client_job_json (&job);
            printf ("%s\n", text? text: "null");
            free (text);
        }
        else
            s_print_job (&job);
        rc = 0;
    }
    vdgx_jobstatus_clear (&job);
    vdgx_client_destroy (&client);
    return rc;
}

int
vdgx_cli_list (vdgx_cli_t *cli, int argc, char **argv)
{
    static const struct option longopts [] = {
        { "state", required_argument, NULL, 's' }, { "model", required_argument, NULL, 'm' },
        { "limit", required_argument, NULL, 'n' }, { "json", no_argument, NULL, 'j' },
        { "after", required_argument, NULL, 'a' }, { "oldest-first", no_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
    };
    const char *state = NULL, *model = NULL, *after = NULL;
    unsigned long limit = 0;
    bool json = false, newest_first = true;
    int c;
    optind = 0;
    while ((c = getopt_long (argc, argv, "s:m:n:h", longopts, NULL)) != -1) {
        vdgx_job_state_t st;
        if (c == 's') {
            if (vdgx_job_state_parse (optarg, &st))
                return s_bad_usage ("list", "--state: expected queued, running, completed, failed, cancelled or expired");
            state = optarg;
        }
        else if (c == 'm') {
            if (!vdgx_model_name_valid (optarg))
                return s_bad_usage ("list", "--model: not a model name");
            model = optarg;
        }
        else if (c == 'n') {
            if (vdgx_cli_parse_uint ("list", "--limit", optarg, 1, 1000, &limit))
                return VDGX_EXIT_USAGE;
        }
        else if (c == 'a') {
            if (!vdgx_job_id_valid (optarg))
                return s_bad_usage ("list", "--after: not a job id");
            after = optarg;
        }
        else if (c == 'o') newest_first = false;
        else if (c == 'j') json = true;
        else if (c == 'h') {
            printf ("usage: vdgx list [--state S] [--model M] [--limit N] [--after ID] [--oldest-first] [--json]\n"
                    "  Newest first; --after ID continues with the jobs older than ID (newer with\n"
                    "  --oldest-first), so the last ID of one page gives the next.\n");
            return 0;
        }
        else
            return s_bad_usage ("list", "bad option");
    }
    if (optind != argc)
        return s_bad_usage ("list", "unexpected argument");
    vdgx_client_t *client = vdgx_cli_client (cli);
    if (!client)
        return VDGX_EXIT_USAGE;
    vdgx_jobstatus_t *jobs = NULL;
    size_t count = 0;
    bool has_more = false;
    int rc = 0;
    if (vdgx_client_list (client, state, model, (uint32_t) limit, after, newest_first, &jobs, &count,
                          &has_more))
        rc = vdgx_cli_fail (client, "list");
    else
    if (json) {
        json_t *root = json_object (), *arr = json_array ();
        for (size_t i = 0; i < count; i++) {
            char *text = vdgx_client_job_json (&jobs [i]);
            json_t *j = text? json_loads (text, 0, NULL): NULL;
            json_array_append_new (arr, j? j: json_null ());
            free (text);
        }
        json_object_set_new (root, "jobs", arr);
        json_object_set_new (root, "has_more", json_boolean (has_more));
        char *text = json_dumps (root, JSON_COMPACT | JSON_REAL_PRECISION (15));
        printf ("%s\n", text);
        free (text);
        json_decref (root);
    }
    else {
        printf ("%-36s %-10s %-14s %6s  %-16s %s\n", "ID", "STATE", "PHASE", "PCT", "MODEL", "CREATED");
        for (size_t i = 0; i < count; i++) {
            char created [32];
            s_time (created, sizeof created, jobs [i].created_at);
            printf ("%-36s %-10s %-14s %5.1f%%  %-16s %s\n", jobs [i].id,
                    vdgx_job_state_name (jobs [i].state), vdgx_phase_name (jobs [i].phase),
                    jobs [i].percent, jobs [i].model, created);
        }
        if (has_more && count)
            printf ("(more: vdgx list --after %s%s)\n", jobs [count - 1].id,
                    newest_first? "": " --oldest-first");
    }
    vdgx_client_jobs_free (&jobs, count);
    vdgx_client_destroy (&client);
    return rc;
}

int
vdgx_cli_cancel (vdgx_cli_t *cli, int argc, char **argv)
{
    s_idargs_t args;
    int rc = s_parse_id (cli, "cancel", argc, argv, false, false, false, &args);
    if (rc >= 0)
        return rc;
    vdgx_client_t *client = args.client;
    vdgx_jobstatus_t job;
    vdgx_jobstatus_init (&job);
    if (vdgx_client_cancel (client, args.id, &job) != 0)
        rc = vdgx_cli_fail (client, "cancel");
    else {
        printf ("%s %s\n", job.id, vdgx_job_state_name (job.state));
        rc = 0;
    }
    vdgx_jobstatus_clear (&job);
    vdgx_client_destroy (&client);
    return rc;
}

int
vdgx_cli_delete (vdgx_cli_t *cli, int argc, char **argv)
{
    s_idargs_t args;
    int rc = s_parse_id (cli, "delete", argc, argv, false, false, false, &args);
    if (rc >= 0)
        return rc;
    vdgx_client_t *client = args.client;
    if (vdgx_client_delete (client, args.id) != 0)
        rc = vdgx_cli_fail (client, "delete");
    else {
        printf ("%s deleted\n", args.id);
        rc = 0;
    }
    vdgx_client_destroy (&client);
    return rc;
}

int
vdgx_cli_download (vdgx_cli_t *cli, int argc, char **argv)
{
    s_idargs_t args;
    int rc = s_parse_id (cli, "download", argc, argv, true, false, false, &args);
    if (rc >= 0)
        return rc;
    vdgx_client_t *client = args.client;
    char *path = args.out? strdup (args.out): zsys_sprintf ("%s.mp4", args.id);
    vdgx_jobstatus_t job;
    vdgx_jobstatus_init (&job);
    if (vdgx_client_status (client, args.id, &job) != 0)
        rc = vdgx_cli_fail (client, "download");
    else
    if (job.state != VDGX_JOB_COMPLETED) {
        if (job.has_error)
            fprintf (stderr, "vdgx download: job %s is %s (%s: %s)\n", args.id,
                     vdgx_job_state_name (job.state), job.error.code, job.error.message);
        else
            fprintf (stderr, "vdgx download: job %s is %s, not completed\n", args.id,
                     vdgx_job_state_name (job.state));
        rc = vdgx_job_state_is_final (job.state)? VDGX_EXIT_JOB_FAILED: VDGX_EXIT_REFUSED;
    }
    else
    if (vdgx_client_result (client, args.id, path) != 0)
        rc = vdgx_cli_fail (client, "download");
    else {
        s_print_saved (path, &job);
        rc = 0;
    }
    vdgx_jobstatus_clear (&job);
    zstr_free (&path);
    vdgx_client_destroy (&client);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  Introspection: the broker's maps arrive as JSON text; tables are drawn from them.

static int
s_parse_json_only (const char *cmd, int argc, char **argv, bool *json, const char **model)
{
    static const struct option longopts [] = {
        { "json", no_argument, NULL, 'j' }, { "model", required_argument, NULL, 'm' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
    };
    int c;
    optind = 0;
    *json = false;
    while ((c = getopt_long (argc, argv, "m:h", longopts, NULL)) != -1) {
        if (c == 'j') *json = true;
        else if (c == 'm' && model) {
            if (!vdgx_model_name_valid (optarg))
                return s_bad_usage (cmd, "--model: not a model name");
            *model = optarg;
        }
        else if (c == 'h') {
            printf ("usage: vdgx %s%s [--json]\n", cmd, model? " [--model M]": "");
            return 0;
        }
        else
            return s_bad_usage (cmd, "bad option");
    }
    if (optind != argc)
        return s_bad_usage (cmd, "unexpected argument");
    return -1;
}

static const char *
s_str (json_t *obj, const char *key, const char *dflt)
{
    const char *v = json_string_value (json_object_get (obj, key));
    return v? v: dflt;
}

static json_int_t
s_int (json_t *obj, const char *key)
{
    json_t *v = json_object_get (obj, key);
    return json_is_integer (v)? json_integer_value (v): json_is_real (v)? (json_int_t) json_real_value (v): 0;
}

//  "warm 2, busy 1" from a states map.
static void
s_states_text (json_t *states, char *buf, size_t size)
{
    *buf = 0;
    const char *key;
    json_t *value;
    size_t used = 0;
    json_object_foreach (states, key, value) {
        if (json_integer_value (value) == 0)
            continue;
        int n = snprintf (buf + used, size - used, "%s%s %lld", used? ", ": "", key,
                          (long long) json_integer_value (value));
        if (n < 0 || (size_t) n >= size - used)
            break;
        used += n;
    }
    if (!used)
        snprintf (buf, size, "-");
}

int
vdgx_cli_workers (vdgx_cli_t *cli, int argc, char **argv)
{
    bool json;
    const char *model = NULL;
    int rc = s_parse_json_only ("workers", argc, argv, &json, &model);
    if (rc >= 0)
        return rc;
    vdgx_client_t *client = vdgx_cli_client (cli);
    if (!client)
        return VDGX_EXIT_USAGE;
    char *text = NULL;
    if (vdgx_client_workers (client, model, &text) != 0)
        rc = vdgx_cli_fail (client, "workers");
    else
    if (json) {
        printf ("%s\n", text);
        rc = 0;
    }
    else {
        json_t *root = json_loads (text, 0, NULL);
        json_t *workers = json_object_get (root, "workers");
        printf ("%-16s %-9s %-8s %-16s %-8s %-10s %s\n", "MODEL", "STATE", "PID", "HOST",
                "DEVICE", "RSS_MB", "JOB");
        size_t i;
        json_t *w;
        json_array_foreach (workers, i, w)
            printf ("%-16s %-9s %-8lld %-16s %-8s %-10.0f %s\n", s_str (w, "service", "?"),
                    s_str (w, "state", "?"), (long long) s_int (w, "pid"), s_str (w, "host", "-"),
                    s_str (w, "device", "-"), s_int (w, "rss_bytes") / 1048576.0,
                    *s_str (w, "job", "")? s_str (w, "job", ""): "-");
        if (json_array_size (workers) == 0)
            printf ("(no workers)\n");
        json_decref (root);
        rc = 0;
    }
    free (text);
    vdgx_client_destroy (&client);
    return rc;
}

//  A model's limits (PROTOCOL.md 5.8) in one line: sizes, frames, steps.
static void
s_limits_text (json_t *limits, char *buf, size_t size)
{
    if (!json_is_object (limits)) {
        snprintf (buf, size, "-");
        return;
    }
    char sizes [160] = "";
    json_t *list = json_object_get (limits, "sizes");
    size_t i, used = 0;
    json_t *item;
    json_array_foreach (list, i, item)
        if (used < sizeof sizes)
            used += (size_t) snprintf (sizes + used, sizeof sizes - used, "%s%s", i? ",": "",
                                       json_string_value (item)? json_string_value (item): "?");
    if (!*sizes)
        snprintf (sizes, sizeof sizes, "%lld..%lld step %lld", (long long) s_int (limits, "wh_min"),
                  (long long) s_int (limits, "wh_max"), (long long) s_int (limits, "wh_multiple"));
    long long step = s_int (limits, "frames_step");
    if (step < 2 && json_is_true (json_object_get (limits, "frames_4n1")))
        step = 4;
    char rule [32] = "";
    if (step > 1)
        snprintf (rule, sizeof rule, " (%lldn+1)", step);
    snprintf (buf, size, "%s, frames <= %lld%s, steps <= %lld", sizes,
              (long long) s_int (limits, "frames_max"), rule,
              (long long) s_int (limits, "steps_max"));
}

int
vdgx_cli_models (vdgx_cli_t *cli, int argc, char **argv)
{
    bool json;
    int rc = s_parse_json_only ("models", argc, argv, &json, NULL);
    if (rc >= 0)
        return rc;
    vdgx_client_t *client = vdgx_cli_client (cli);
    if (!client)
        return VDGX_EXIT_USAGE;
    char *text = NULL;
    if (vdgx_client_models (client, &text) != 0)
        rc = vdgx_cli_fail (client, "models");
    else
    if (json) {
        printf ("%s\n", text);
        rc = 0;
    }
    else {
        json_t *root = json_loads (text, 0, NULL);
        json_t *models = json_object_get (root, "models");
        printf ("%-24s %-8s %-24s %s\n", "MODEL", "WORKERS", "STATES", "ACCEPTS");
        size_t i;
        json_t *m;
        json_array_foreach (models, i, m) {
            char states [160], limits [256];
            s_states_text (json_object_get (m, "states"), states, sizeof states);
            s_limits_text (json_object_get (m, "limits"), limits, sizeof limits);
            printf ("%-24s %-8lld %-24s %s\n", s_str (m, "name", "?"), (long long) s_int (m, "workers"),
                    states, limits);
        }
        if (json_array_size (models) == 0)
            printf ("(no models)\n");
        json_decref (root);
        rc = 0;
    }
    free (text);
    vdgx_client_destroy (&client);
    return rc;
}

//  unload MODEL / reset-limits MODEL: one model, a worker count back.
static int
s_model_command (vdgx_cli_t *cli, int argc, char **argv, const char *name,
                 int (*call) (vdgx_client_t *, const char *, uint32_t *), const char *done)
{
    if (argc == 2 && (streq (argv [1], "-h") || streq (argv [1], "--help"))) {
        printf ("usage: vdgx %s MODEL\n", name);
        return 0;
    }
    if (argc != 2)
        return s_bad_usage (name, "expected one MODEL");
    if (!vdgx_model_name_valid (argv [1]))
        return s_bad_usage (name, "not a model name (1..64 of [a-z0-9._-])");
    vdgx_client_t *client = vdgx_cli_client (cli);
    if (!client)
        return VDGX_EXIT_USAGE;
    uint32_t n = 0;
    int rc = 0;
    if (call (client, argv [1], &n) != 0)
        rc = vdgx_cli_fail (client, name);
    else
        printf ("%s: %u worker%s %s\n", argv [1], n, n == 1? "": "s", done);
    vdgx_client_destroy (&client);
    return rc;
}

int
vdgx_cli_unload (vdgx_cli_t *cli, int argc, char **argv)
{
    return s_model_command (cli, argc, argv, "unload", vdgx_client_unload, "asked to unload");
}

//  reset-limits MODEL: the broker forgets the model's stored limits (admin); its live
//  workers advertise them again.
int
vdgx_cli_reset_limits (vdgx_cli_t *cli, int argc, char **argv)
{
    return s_model_command (cli, argc, argv, "reset-limits", vdgx_client_reset_limits,
                            "to advertise the limits again (stored ones forgotten)");
}

//  drain [--model M] [--host H]: matching workers finish their job, take no other, and leave.
int
vdgx_cli_drain (vdgx_cli_t *cli, int argc, char **argv)
{
    static const struct option longopts [] = {
        { "model", required_argument, NULL, 'm' }, { "host", required_argument, NULL, 'H' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
    };
    const char *model = NULL, *host = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long (argc, argv, "m:h", longopts, NULL)) != -1) {
        if (c == 'm') {
            if (!vdgx_model_name_valid (optarg))
                return s_bad_usage ("drain", "--model: not a model name (1..64 of [a-z0-9._-])");
            model = optarg;
        }
        else
        if (c == 'H') {
            if (!*optarg || strlen (optarg) > VDGX_HOST_MAX)
                return s_bad_usage ("drain", "--host: 1..255 characters");
            host = optarg;
        }
        else
        if (c == 'h') {
            printf ("usage: vdgx drain [--model M] [--host H]\n"
                    "  the matching workers finish the job they hold, take no other and exit\n");
            return 0;
        }
        else
            return s_bad_usage ("drain", "bad option");
    }
    if (optind != argc)
        return s_bad_usage ("drain", "unexpected argument");
    if (!model && !host)
        return s_bad_usage ("drain", "give --model, --host or both");
    vdgx_client_t *client = vdgx_cli_client (cli);
    if (!client)
        return VDGX_EXIT_USAGE;
    uint32_t n = 0;
    int rc = 0;
    if (vdgx_client_drain (client, model, host, &n) != 0)
        rc = vdgx_cli_fail (client, "drain");
    else
        printf ("%u worker%s told to drain\n", n, n == 1? "": "s");
    vdgx_client_destroy (&client);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  health: mmi.health over the broker, coloured on a TTY.

#define S_GREEN  "\033[32m"
#define S_YELLOW "\033[33m"
#define S_RED    "\033[31m"
#define S_RESET  "\033[0m"

static const char *
s_col (vdgx_cli_t *cli, const char *color)
{
    return cli->color? color: "";
}

static void
s_bytes (char *buf, size_t size, double bytes)
{
    const char *units [] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    snprintf (buf, size, u? "%.1f %s": "%.0f %s", bytes, units [u]);
}

int
vdgx_cli_health (vdgx_cli_t *cli, int argc, char **argv)
{
    static const struct option longopts [] = {
        { "json", no_argument, NULL, 'j' }, { "require", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
    };
    const char *require [32];
    int nrequire = 0;
    bool json = false;
    int c;
    optind = 0;
    while ((c = getopt_long (argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'j') json = true;
        else if (c == 'r') {
            if (!vdgx_model_name_valid (optarg) || nrequire == 32)
                return s_bad_usage ("health", "--require: not a model name (or more than 32)");
            require [nrequire++] = optarg;
        }
        else if (c == 'h') {
            printf ("usage: vdgx health [--json] [--require MODEL]...\n"
                    "Exit status: 0 healthy; 3 broker unreachable; 6 unhealthy (the broker or its\n"
                    "store says so, or a --require'd model has no live worker).\n");
            return 0;
        }
        else
            return s_bad_usage ("health", "bad option");
    }
    if (optind != argc)
        return s_bad_usage ("health", "unexpected argument");
    //  Health reports a missing broker in its own format (text or JSON), not as an error.
    char why [128] = "";
    bool absent = vdgx_cli_broker_absent (cli, why, sizeof why);
    vdgx_client_t *client = vdgx_cli_client (cli);
    if (!client)
        return VDGX_EXIT_USAGE;
    bool healthy = false;
    char *text = NULL;
    int rc;
    if (absent || vdgx_client_health (client, &healthy, &text) != 0) {
        //  Nothing listens (said at once), or no answer in time.
        bool unreachable = absent || streq (vdgx_client_error_code (client), "timeout");
        if (absent)
            fprintf (stderr, "vdgx health: no broker at %s (%s); `vdgx up` starts the stack\n",
                     cli->broker, why);
        if (json) {
            json_t *root = json_pack ("{s:b,s:b,s:s,s:s,s:s}", "reachable", !unreachable,
                                      "healthy", 0, "broker", cli->broker,
                                      "error", absent? "timeout": vdgx_client_error_code (client),
                                      "message", absent? why: vdgx_client_error (client));
            char *out = json_dumps (root, JSON_COMPACT | JSON_REAL_PRECISION (15));
            printf ("%s\n", out);
            free (out);
            json_decref (root);
        }
        else
            printf ("%sbroker %s: %s%s\n", s_col (cli, S_RED), cli->broker,
                    unreachable? "unreachable": vdgx_client_error (client), s_col (cli, S_RESET));
        rc = unreachable? VDGX_EXIT_UNREACHABLE: VDGX_EXIT_UNHEALTHY;
        vdgx_client_destroy (&client);
        return rc;
    }
    json_t *root = json_loads (text, 0, NULL);
    json_t *store = json_object_get (root, "store");
    json_t *services = json_object_get (root, "services");
    bool store_ok = json_is_true (json_object_get (store, "ok"));
    bool ok = healthy && store_ok;
    //  Required models need a live worker that takes jobs (a draining one is leaving).
    char missing [512] = "";
    for (int i = 0; i < nrequire; i++) {
        bool found = false;
        size_t k;
        json_t *s;
        json_array_foreach (services, k, s)
            if (streq (s_str (s, "name", ""), require [i])
            &&  s_int (s, "workers") - s_int (json_object_get (s, "states"), "draining") > 0)
                found = true;
        if (!found) {
            ok = false;
            size_t used = strlen (missing);
            snprintf (missing + used, sizeof missing - used, "%s%s", used? " ": "", require [i]);
        }
    }
    if (json) {
        json_object_set_new (root, "reachable", json_true ());
        json_object_set_new (root, "broker", json_string (cli->broker));
        json_object_set_new (root, "ok", json_boolean (ok));
        if (*missing)
            json_object_set_new (root, "missing", json_string (missing));
        char *out = json_dumps (root, JSON_COMPACT | JSON_REAL_PRECISION (15));
        printf ("%s\n", out);
        free (out);
    }
    else {
        double uptime = json_number_value (json_object_get (root, "uptime_s"));
        printf ("%s%-8s%s %s  %s (up %.0f s, %s)\n", s_col (cli, healthy? S_GREEN: S_RED),
                healthy? "healthy": "UNHEALTHY", s_col (cli, S_RESET), cli->broker,
                "broker", uptime, s_str (root, "version", "?"));
        char bytes [32];
        s_bytes (bytes, sizeof bytes, (double) s_int (store, "output_bytes"));
        printf ("%s%-8s%s store: %lld jobs, %s of outputs\n", s_col (cli, store_ok? S_GREEN: S_RED),
                store_ok? "ok": "DEGRADED", s_col (cli, S_RESET), (long long) s_int (store, "jobs"), bytes);
        if (!store_ok)
            printf ("%-8s store: degraded: %s (dispatch paused, submits refused; it recovers by\n"
                    "%-8s itself when the disk writes again)\n", "", s_str (store, "reason", "?"), "");
        printf ("%-8s queued %lld, running %lld, workers %lld\n", "", (long long) s_int (root, "queued"),
                (long long) s_int (root, "running"), (long long) s_int (root, "workers"));
        size_t k;
        json_t *s;
        json_array_foreach (services, k, s) {
            json_int_t workers = s_int (s, "workers");
            char states [160];
            s_states_text (json_object_get (s, "states"), states, sizeof states);
            printf ("%s%-8s%s model %-20s workers %lld (%s), queued %lld, running %lld\n",
                    s_col (cli, workers > 0? S_GREEN: S_YELLOW), workers > 0? "ok": "no-worker",
                    s_col (cli, S_RESET), s_str (s, "name", "?"), (long long) workers, states,
                    (long long) s_int (s, "queued"), (long long) s_int (s, "running"));
        }
        if (*missing)
            printf ("%s%-8s%s required model(s) without a live worker: %s\n", s_col (cli, S_RED),
                    "MISSING", s_col (cli, S_RESET), missing);
    }
    json_decref (root);
    free (text);
    vdgx_client_destroy (&client);
    return ok? 0: VDGX_EXIT_UNHEALTHY;
}
