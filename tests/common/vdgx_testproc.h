/*  vdgx_testproc.h - process helpers for the end-to-end test programs (tests/worker,
    tests/wan21): one temp dir removed at exit, child processes that log into it and die with
    the test (even when it crashes), their logs dumped when a check fails, and free TCP ports.
    Tests only; never shipped.
*/
#ifndef VDGX_TESTPROC_H_INCLUDED
#define VDGX_TESTPROC_H_INCLUDED

#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Makes the temp dir /tmp/<prefix>-XXXXXX and registers the clean-up (kill every child
//  still running, remove the dir) with atexit. Returns 0, or -1 with a message on stderr.
int vdgx_testproc_init (const char *prefix);

//  The temp dir ("" before init).
const char *vdgx_testproc_dir (void);

//  Starts argv [0] (an absolute path) with stdout and stderr appended to
//  <dir>/<name>.<slot>.log. Returns its pid, or -1 (too many children, fork failed).
pid_t vdgx_testproc_spawn (const char *name, char *const argv []);

//  The exit status of pid (128 + signal when it was killed), or -1 when it is still running
//  after timeout_ms. A reaped child is no longer killed at clean-up.
int vdgx_testproc_wait_exit (pid_t pid, int timeout_ms);

//  Copies every child's log to stderr (for a failed check).
void vdgx_testproc_dump_logs (void);

//  Lines holding needle in the logs of the children whose log path contains which (e.g.
//  "/worker."), or in all logs when which is NULL.
int vdgx_testproc_count_lines (const char *which, const char *needle);

//  Whether no child's log holds a sanitizer report (their exit codes alone may not show one).
int vdgx_testproc_sanitizer_clean (void);

//  Binds count (1..8) distinct free TCP ports on 127.0.0.1, chosen at random below the
//  kernel's ephemeral range (32768+), where outgoing connections of parallel tests cannot
//  take them between the choice and the bind. Returns 0, or -1.
int vdgx_testproc_free_ports (int *ports, int count);

//  A check that, when it fails, names itself, dumps the children's logs and exits 1.
#define VDGX_TEST_CHECK(cond) do { if (!(cond)) { \
    fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    vdgx_testproc_dump_logs (); exit (1); } } while (0)

#ifdef __cplusplus
}
#endif
#endif
