/*  vdgx_outcheck.h - checks a completed job's output file before it is served.

    At completion the broker records the output's size and SHA-256 (the worker's FINAL,
    verified on the received bytes). A file can still vanish or change later (an operator,
    a full disk during a copy, a bad sector). Before the broker serves an output or calls
    a job completed it asks this class: the size is checked on every call (one stat); the
    SHA-256 is checked when asked for (the first read of a download) and remembered per
    file (inode, size and modification time), so a file is hashed once, not per chunk.
*/
#ifndef VDGX_OUTCHECK_H_INCLUDED
#define VDGX_OUTCHECK_H_INCLUDED

#include "vdgx_jobstore.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _vdgx_outcheck_t vdgx_outcheck_t;

//  Checks the outputs of store (borrowed; it must outlive the checker).
vdgx_outcheck_t *vdgx_outcheck_new (vdgx_jobstore_t *store);
void vdgx_outcheck_destroy (vdgx_outcheck_t **self_p);
//  0 when job's output is there with the recorded size (and, with hash, the recorded
//  SHA-256); -1 with the reason in why otherwise. Only meaningful for completed jobs.
int vdgx_outcheck_verify (vdgx_outcheck_t *self, const vdgx_jobrec_t *job, bool hash,
                          char *why, size_t whysize);
//  The output was just verified (at completion): its file's stamp is remembered, so the
//  first check with hash does not read it again.
void vdgx_outcheck_remember (vdgx_outcheck_t *self, const vdgx_jobrec_t *job);
//  Forgets what was verified for a job (deleted).
void vdgx_outcheck_forget (vdgx_outcheck_t *self, const char *id);

void vdgx_outcheck_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
