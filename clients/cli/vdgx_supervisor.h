/*  vdgx_supervisor.h - child processes kept running: each child's stdout/stderr appended to
    LOGDIR/NAME.log, a crashed child restarted after an exponential back-off (initial, x2 per
    quick failure, capped; reset once a child stayed up for `stable` ms), and an orderly stop
    (SIGTERM to the others, then to the first child, each with SIGKILL after a grace period).

    A child that exits with status 2 (bad usage) or 127 (could not exec) is not restarted:
    running it again cannot help. Children run in their own process groups (so a terminal's
    Ctrl-C reaches only the supervisor, which stops them in order) and get SIGTERM if the
    supervisor dies (PR_SET_PDEATHSIG), so none is left behind.
*/
#ifndef VDGX_SUPERVISOR_H_INCLUDED
#define VDGX_SUPERVISOR_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct _vdgx_supervisor_t vdgx_supervisor_t;

//  log_dir must exist. Events ("started", "exited", "restarting in") are written to
//  events (may be NULL).
vdgx_supervisor_t *vdgx_supervisor_new (const char *log_dir, FILE *events);
void vdgx_supervisor_destroy (vdgx_supervisor_t **self_p);
//  Back-off in ms: first delay, cap, and the uptime after which a child counts as stable.
void vdgx_supervisor_set_backoff (vdgx_supervisor_t *self, int initial_ms, int max_ms, int stable_ms);
//  Adds a child (argv and env "KEY=VALUE" entries are copied; env may be NULL). Returns 0 or -1.
int vdgx_supervisor_add (vdgx_supervisor_t *self, const char *name, char *const argv [],
                         char *const env []);
//  Starts every child not running yet. Returns how many are running.
int vdgx_supervisor_start (vdgx_supervisor_t *self);
//  Reaps children that exited and restarts those whose back-off is over. Call often.
//  Returns how many are running.
int vdgx_supervisor_poll (vdgx_supervisor_t *self);
//  Stops every child: SIGTERM to all but the first, SIGKILL to those still running after
//  grace_ms; then the same for the first child (the broker outlives its workers).
void vdgx_supervisor_stop (vdgx_supervisor_t *self, int grace_ms);
//  Bumped whenever a child starts or stops (rewrite the pid file when it changes).
uint64_t vdgx_supervisor_generation (vdgx_supervisor_t *self);

size_t vdgx_supervisor_size (vdgx_supervisor_t *self);
const char *vdgx_supervisor_name (vdgx_supervisor_t *self, size_t index);
pid_t vdgx_supervisor_pid (vdgx_supervisor_t *self, size_t index);     //  0 when not running
int vdgx_supervisor_restarts (vdgx_supervisor_t *self, size_t index);
bool vdgx_supervisor_given_up (vdgx_supervisor_t *self, size_t index);

void vdgx_supervisor_test (bool verbose);

#endif
