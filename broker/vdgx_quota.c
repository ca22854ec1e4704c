/*  vdgx_quota.c - bytes of unfinished job inputs per owner (see the header). */
#include "vdgx_quota.h"
#include "vdgx_jobqueue.h"
#include <assert.h>
#include <czmq.h>

//  An owner's total, shared by its jobs' entries; freed when its last job is released.
typedef struct {
    uint64_t bytes;
    size_t jobs;
    char name [];
} s_owner_t;

//  A counted job (one per unfinished job of a named owner): it holds its id, which is also
//  its key in the table (no second copy).
typedef struct {
    uint64_t bytes;
    s_owner_t *owner;
    char id [];
} s_job_t;

struct _vdgx_quota_t {
    uint64_t cap;
    uint64_t total;
    zhashx_t *jobs;             //  job id -> s_job_t
    zhashx_t *owners;           //  owner -> s_owner_t
};

static void
s_free (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

vdgx_quota_t *
vdgx_quota_new (uint64_t cap)
{
    vdgx_quota_t *self = (vdgx_quota_t *) zmalloc (sizeof (vdgx_quota_t));
    self->cap = cap;
    self->jobs = zhashx_new ();
    zhashx_set_destructor (self->jobs, s_free);
    zhashx_set_key_duplicator (self->jobs, NULL);
    zhashx_set_key_destructor (self->jobs, NULL);
    zhashx_set_key_hasher (self->jobs, vdgx_jobqueue_id_hash);
    self->owners = zhashx_new ();
    zhashx_set_destructor (self->owners, s_free);
    return self;
}

void
vdgx_quota_destroy (vdgx_quota_t **self_p)
{
    assert (self_p);
    vdgx_quota_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->jobs);
        zhashx_destroy (&self->owners);
        free (self);
        *self_p = NULL;
    }
}

bool
vdgx_quota_allows (vdgx_quota_t *self, const char *owner, uint64_t bytes)
{
    assert (self && owner);
    if (!self->cap || !*owner)
        return true;
    uint64_t used = vdgx_quota_used (self, owner);
    return bytes <= self->cap && used <= self->cap - bytes;
}

void
vdgx_quota_add (vdgx_quota_t *self, const char *id, const char *owner, uint64_t bytes)
{
    assert (self && id && owner);
    if (!*owner || zhashx_lookup (self->jobs, id))
        return;
    s_owner_t *o = (s_owner_t *) zhashx_lookup (self->owners, owner);
    if (!o) {
        size_t len = strlen (owner);
        o = (s_owner_t *) zmalloc (sizeof (s_owner_t) + len + 1);
        memcpy (o->name, owner, len + 1);
        zhashx_insert (self->owners, owner, o);
    }
    size_t len = strlen (id);
    s_job_t *job = (s_job_t *) zmalloc (sizeof (s_job_t) + len + 1);
    memcpy (job->id, id, len + 1);
    job->bytes = bytes;
    job->owner = o;
    zhashx_insert (self->jobs, job->id, job);
    o->bytes += bytes;
    o->jobs++;
    self->total += bytes;
}

void
vdgx_quota_release (vdgx_quota_t *self, const char *id)
{
    assert (self && id);
    s_job_t *job = (s_job_t *) zhashx_lookup (self->jobs, id);
    if (!job)
        return;
    s_owner_t *o = job->owner;
    o->bytes -= job->bytes;
    self->total -= job->bytes;
    if (--o->jobs == 0)
        zhashx_delete (self->owners, o->name);
    zhashx_delete (self->jobs, id);         //  frees job (and its id, the key)
}

uint64_t
vdgx_quota_used (vdgx_quota_t *self, const char *owner)
{
    assert (self && owner);
    s_owner_t *o = (s_owner_t *) zhashx_lookup (self->owners, owner);
    return o? o->bytes: 0;
}

uint64_t
vdgx_quota_total (vdgx_quota_t *self)
{
    assert (self);
    return self->total;
}

size_t
vdgx_quota_owners (vdgx_quota_t *self)
{
    assert (self);
    return zhashx_size (self->owners);
}

uint64_t
vdgx_quota_cap (vdgx_quota_t *self)
{
    assert (self);
    return self->cap;
}

void
vdgx_quota_test (bool verbose)
{
    (void) verbose;
    printf (" * vdgx_quota: ");
    vdgx_quota_t *quota = vdgx_quota_new (10);
    assert (vdgx_quota_cap (quota) == 10);
    assert (vdgx_quota_allows (quota, "alice", 10));
    assert (!vdgx_quota_allows (quota, "alice", 11));
    vdgx_quota_add (quota, "j1", "alice", 4);
    vdgx_quota_add (quota, "j2", "alice", 4);
    vdgx_quota_add (quota, "j2", "alice", 4);          //  counted once
    assert (vdgx_quota_used (quota, "alice") == 8);
    assert (vdgx_quota_allows (quota, "alice", 2));
    assert (!vdgx_quota_allows (quota, "alice", 3));
    //  Owners are apart: bob has his own cap.
    assert (vdgx_quota_allows (quota, "bob", 10));
    vdgx_quota_add (quota, "j3", "bob", 7);
    assert (vdgx_quota_total (quota) == 15 && vdgx_quota_owners (quota) == 2);
    //  A job that ends gives its bytes back, once; unknown ids change nothing.
    vdgx_quota_release (quota, "j1");
    vdgx_quota_release (quota, "j1");
    vdgx_quota_release (quota, "nope");
    assert (vdgx_quota_used (quota, "alice") == 4);
    assert (vdgx_quota_allows (quota, "alice", 6));
    //  An owner whose last job ended is forgotten.
    vdgx_quota_release (quota, "j2");
    assert (vdgx_quota_owners (quota) == 1 && vdgx_quota_used (quota, "alice") == 0);
    assert (vdgx_quota_total (quota) == 7);
    //  The operator (owner "", no auth) is neither capped nor counted.
    vdgx_quota_add (quota, "j9", "", 100);
    assert (vdgx_quota_allows (quota, "", 100) && vdgx_quota_total (quota) == 7);
    //  Near the top of the range: no overflow in the comparison.
    assert (!vdgx_quota_allows (quota, "bob", UINT64_MAX));
    vdgx_quota_destroy (&quota);
    assert (!quota);
    //  No cap: everything is allowed, and still counted.
    quota = vdgx_quota_new (0);
    assert (vdgx_quota_allows (quota, "x", UINT64_MAX));
    vdgx_quota_add (quota, "a", "x", 1ull << 40);
    assert (vdgx_quota_total (quota) == 1ull << 40);
    vdgx_quota_destroy (&quota);
    printf ("OK\n");
}
