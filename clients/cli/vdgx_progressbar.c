/*  vdgx_progressbar.c - job progress bar / progress lines (see the header). */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "vdgx_progressbar.h"

#define S_BAR_WIDTH 24

struct _vdgx_progressbar_t {
    FILE *out;
    bool tty;
    bool drawn;                 //  a bar line is on screen without its newline
    int64_t first_ms;           //  first update (elapsed counts from here)
    bool running;               //  seen running: run_ms is set
    int64_t run_ms;             //  first update seen running (ETA base)
    double run_percent;         //  percent when running was first seen
    vdgx_job_state_t state;
    vdgx_phase_t phase;
    uint32_t step, steps;
    bool have;
    double percent;             //  last one seen, clamped to [0, 100]
    char line [256];
};

vdgx_progressbar_t *
vdgx_progressbar_new (FILE *out, bool tty)
{
    assert (out);
    vdgx_progressbar_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->out = out;
    self->tty = tty;
    return self;
}

void
vdgx_progressbar_destroy (vdgx_progressbar_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        vdgx_progressbar_finish (*self_p);
        free (*self_p);
        *self_p = NULL;
    }
}

static void
s_clock (char *buf, size_t size, double seconds)
{
    long s = (long) (seconds + 0.5);
    if (s >= 3600)
        snprintf (buf, size, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else
        snprintf (buf, size, "%02ld:%02ld", s / 60, s % 60);
}

static double
s_percent_of (const vdgx_jobstatus_t *job)
{
    double p = job->percent;
    if (!(p >= 0))
        p = 0;                  //  also NaN
    return p > 100? 100: p;
}

static double
s_eta (vdgx_progressbar_t *self, double percent, int64_t now_ms)
{
    if (!self->running || self->state != VDGX_JOB_RUNNING)
        return -1;
    double gained = percent - self->run_percent;
    double elapsed = (now_ms - self->run_ms) / 1000.0;
    if (gained <= 0.01 || elapsed <= 0)
        return -1;
    return elapsed * (100 - percent) / gained;
}

void
vdgx_progressbar_update (vdgx_progressbar_t *self, const vdgx_jobstatus_t *job, int64_t now_ms)
{
    assert (self);
    assert (job);
    double percent = s_percent_of (job);
    if (!self->have)
        self->first_ms = now_ms;
    if (job->state == VDGX_JOB_RUNNING && !self->running) {
        self->running = true;
        self->run_ms = now_ms;
        self->run_percent = percent;
    }
    bool changed = !self->have || job->state != self->state || job->phase != self->phase
                || job->step != self->step || job->steps != self->steps;
    self->have = true;
    self->state = job->state;
    self->phase = job->phase;
    self->step = job->step;
    self->steps = job->steps;
    self->percent = percent;

    double elapsed = (now_ms - self->first_ms) / 1000.0;
    double eta = s_eta (self, percent, now_ms);
    char stepbuf [32] = "";
    if (job->steps > 0)
        snprintf (stepbuf, sizeof stepbuf, " %u/%u", job->step, job->steps);
    const char *what = job->state == VDGX_JOB_RUNNING? vdgx_phase_name (job->phase)
                                                      : vdgx_job_state_name (job->state);
    if (job->state == VDGX_JOB_QUEUED && job->queue_position > 0)
        snprintf (stepbuf, sizeof stepbuf, " #%u", job->queue_position);
    if (self->tty) {
        char bar [S_BAR_WIDTH + 1];
        int fill = (int) (percent * S_BAR_WIDTH / 100.0 + 1e-9);
        for (int i = 0; i < S_BAR_WIDTH; i++)
            bar [i] = i < fill? '#': '.';
        bar [S_BAR_WIDTH] = 0;
        char el [16], et [16] = "--:--";
        s_clock (el, sizeof el, elapsed);
        if (eta >= 0)
            s_clock (et, sizeof et, eta);
        snprintf (self->line, sizeof self->line, "[%s] %3.0f%%  %s%s  %s ETA %s",
                  bar, percent, what, stepbuf, el, et);
        //  \r + erase-line redraws in place; the line never wraps (under 80 columns).
        fprintf (self->out, "\r\033[K%s", self->line);
        fflush (self->out);
        self->drawn = true;
    }
    else {
        char etabuf [32] = "?";
        if (eta >= 0)
            snprintf (etabuf, sizeof etabuf, "%.0fs", eta);
        snprintf (self->line, sizeof self->line,
                  "progress: id=%s state=%s phase=%s step=%u/%u percent=%.1f elapsed=%.1fs eta=%s",
                  job->id, vdgx_job_state_name (job->state), vdgx_phase_name (job->phase),
                  job->step, job->steps, percent, elapsed, etabuf);
        if (changed) {
            fprintf (self->out, "%s\n", self->line);
            fflush (self->out);
        }
    }
}

double
vdgx_progressbar_eta (vdgx_progressbar_t *self, int64_t now_ms)
{
    assert (self);
    return self->have? s_eta (self, self->percent, now_ms): -1;
}

void
vdgx_progressbar_finish (vdgx_progressbar_t *self)
{
    assert (self);
    if (self->drawn) {
        fputc ('\n', self->out);
        fflush (self->out);
        self->drawn = false;
    }
}

const char *
vdgx_progressbar_line (vdgx_progressbar_t *self)
{
    assert (self);
    return self->line;
}

void
vdgx_progressbar_test (bool verbose)
{
    printf (" * vdgx_progressbar: ");
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    assert (out);
    vdgx_jobstatus_t job;
    vdgx_jobstatus_init (&job);
    snprintf (job.id, sizeof job.id, "job-1");
    snprintf (job.model, sizeof job.model, "m");

    //  Plain lines: one per change, repeats of the same step print nothing.
    vdgx_progressbar_t *p = vdgx_progressbar_new (out, false);
    job.state = VDGX_JOB_QUEUED;
    job.queue_position = 2;
    vdgx_progressbar_update (p, &job, 1000);
    assert (vdgx_progressbar_eta (p, 1000) < 0);
    job.state = VDGX_JOB_RUNNING;
    job.phase = VDGX_PHASE_DENOISING;
    job.steps = 10;
    job.step = 1;
    job.percent = 10;
    vdgx_progressbar_update (p, &job, 2000);
    vdgx_progressbar_update (p, &job, 2500);       //  unchanged: no new line
    job.step = 5;
    job.percent = 50;
    vdgx_progressbar_update (p, &job, 6000);
    //  40 points in 4 s since running was first seen: 50 left take 5 s.
    assert (fabs (vdgx_progressbar_eta (p, 6000) - 5.0) < 1e-9);
    assert (strstr (vdgx_progressbar_line (p), "eta=5s"));
    assert (strstr (vdgx_progressbar_line (p), "step=5/10"));
    assert (strstr (vdgx_progressbar_line (p), "elapsed=5.0s"));
    vdgx_progressbar_destroy (&p);
    fflush (out);
    int lines = 0;
    for (char *c = text; *c; c++)
        lines += *c == '\n';
    assert (lines == 3);
    assert (!strchr (text, '\r') && !strchr (text, '\033'));

    //  TTY: every update redraws one line, never a newline until finish.
    rewind (out);
    memset (text, 0, size);
    p = vdgx_progressbar_new (out, true);
    job.step = 5;
    job.percent = 50;
    vdgx_progressbar_update (p, &job, 0);
    job.percent = 75;
    job.step = 7;
    vdgx_progressbar_update (p, &job, 1000);
    fflush (out);
    assert (!strchr (text, '\n'));
    assert (strstr (text, "\r\033[K"));
    const char *line = vdgx_progressbar_line (p);
    assert (strstr (line, "[##################......]"));   //  75% of 24
    assert (strstr (line, " 75%"));
    assert (strstr (line, "denoising 7/10"));
    assert (strstr (line, "00:01 ETA 00:01"));
    assert (strlen (line) < 80);
    vdgx_progressbar_finish (p);
    fflush (out);
    assert (strchr (text, '\n'));
    vdgx_progressbar_destroy (&p);
    if (verbose)
        printf ("(%s) ", line);

    //  Out-of-range percents are clamped, not drawn past the bar.
    p = vdgx_progressbar_new (out, true);
    job.percent = 250;
    vdgx_progressbar_update (p, &job, 0);
    assert (strstr (vdgx_progressbar_line (p), "100%"));
    job.percent = -3;
    vdgx_progressbar_update (p, &job, 0);
    assert (strstr (vdgx_progressbar_line (p), "  0%"));
    vdgx_progressbar_destroy (&p);

    vdgx_jobstatus_clear (&job);
    fclose (out);
    free (text);
    printf ("OK\n");
}
