/*  vdgx_quota.h - the bytes of job inputs each owner has waiting in the broker.

    A job's request (prompt, parameters and its images: up to 8 MiB for image-to-video) is
    stored with the job and held until the job ends. The broker counts, per owner, the
    request bytes of its jobs that are not yet terminal (queued or running) and refuses a
    submit that would take an owner over the cap (docs/SECURITY.md, `--owner-queued-max`).
    A job is counted from its submit (or from the broker's restart, for jobs the store still
    holds unfinished) until it ends or is deleted; adding or releasing one twice changes
    nothing, so the callers need not know whether they already did. Jobs of the operator
    (owner "": trusted local peers without auth, always an admin) are neither counted nor
    capped, so a loopback deployment pays nothing for this, even with a million jobs queued.

        vdgx_quota_t *quota = vdgx_quota_new (512 << 20);
        if (!vdgx_quota_allows (quota, "curve:alice", size)) refuse ();
        vdgx_quota_add (quota, id, "curve:alice", size);
        ...
        vdgx_quota_release (quota, id);         //  the job ended
        vdgx_quota_destroy (&quota);
*/
#ifndef VDGX_QUOTA_H_INCLUDED
#define VDGX_QUOTA_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _vdgx_quota_t vdgx_quota_t;

//  cap: bytes per owner (0 = no cap: only counted).
vdgx_quota_t *vdgx_quota_new (uint64_t cap);
void vdgx_quota_destroy (vdgx_quota_t **self_p);
//  Whether owner may hold bytes more within the cap.
bool vdgx_quota_allows (vdgx_quota_t *self, const char *owner, uint64_t bytes);
//  Counts job id's bytes for owner until it is released (a second add of id is ignored).
void vdgx_quota_add (vdgx_quota_t *self, const char *id, const char *owner, uint64_t bytes);
//  Job id ended or was deleted: its bytes no longer count (unknown ids are ignored).
void vdgx_quota_release (vdgx_quota_t *self, const char *id);
//  Bytes counted for owner; for everyone; owners with bytes counted.
uint64_t vdgx_quota_used (vdgx_quota_t *self, const char *owner);
uint64_t vdgx_quota_total (vdgx_quota_t *self);
size_t vdgx_quota_owners (vdgx_quota_t *self);
uint64_t vdgx_quota_cap (vdgx_quota_t *self);

void vdgx_quota_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
