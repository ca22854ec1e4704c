/*  vdgx_outcheck.c - output file checks (see the header).
*/
#include "vdgx_outcheck.h"
#include "vdgx_storecheck.h"
#include "vdgx_sha256.h"
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct _vdgx_outcheck_t {
    vdgx_jobstore_t *store;
    zhashx_t *verified;         //  job id -> "ino:size:mtime_ns" of the file whose hash matched
};

vdgx_outcheck_t *
vdgx_outcheck_new (vdgx_jobstore_t *store)
{
    assert (store);
    vdgx_outcheck_t *self = (vdgx_outcheck_t *) zmalloc (sizeof (vdgx_outcheck_t));
    assert (self);
    self->store = store;
    self->verified = zhashx_new ();
    zhashx_set_destructor (self->verified, (czmq_destructor *) zstr_free);
    return self;
}

void
vdgx_outcheck_destroy (vdgx_outcheck_t **self_p)
{
    assert (self_p);
    vdgx_outcheck_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->verified);
        free (self);
        *self_p = NULL;
    }
}

static bool
s_stamp (vdgx_outcheck_t *self, const char *id, struct stat *sb, char *stamp, size_t size)
{
    char path [4096];
    vdgx_jobstore_output_path (self->store, id, path, sizeof path);
    if (stat (path, sb))
        return false;
    snprintf (stamp, size, "%llu:%llu:%lld.%09ld", (unsigned long long) sb->st_ino,
              (unsigned long long) sb->st_size, (long long) sb->st_mtim.tv_sec, sb->st_mtim.tv_nsec);
    return true;
}

void
vdgx_outcheck_remember (vdgx_outcheck_t *self, const vdgx_jobrec_t *job)
{
    assert (self && job);
    struct stat sb;
    char stamp [96];
    if (s_stamp (self, job->id, &sb, stamp, sizeof stamp))
        zhashx_update (self->verified, job->id, strdup (stamp));
}

int
vdgx_outcheck_verify (vdgx_outcheck_t *self, const vdgx_jobrec_t *job, bool hash,
                      char *why, size_t whysize)
{
    assert (self && job && why);
    char path [4096];
    vdgx_jobstore_output_path (self->store, job->id, path, sizeof path);
    struct stat sb;
    char stamp [96];
    if (!s_stamp (self, job->id, &sb, stamp, sizeof stamp)) {
        snprintf (why, whysize, "the output file is gone (%s)", strerror (errno));
        zhashx_delete (self->verified, job->id);
        return -1;
    }
    if ((uint64_t) sb.st_size != job->size) {
        snprintf (why, whysize, "the output file is %llu bytes, %llu were recorded at completion",
                  (unsigned long long) sb.st_size, (unsigned long long) job->size);
        zhashx_delete (self->verified, job->id);
        return -1;
    }
    if (!hash || !*job->sha256)
        return 0;
    const char *seen = (const char *) zhashx_lookup (self->verified, job->id);
    if (seen && streq (seen, stamp))
        return 0;
    char hex [VDGX_SHA256_HEX_SIZE];
    if (vdgx_sha256_file (path, hex)) {
        snprintf (why, whysize, "the output file cannot be read (%s)", strerror (errno));
        return -1;
    }
    if (!streq (hex, job->sha256)) {
        snprintf (why, whysize, "the output file's SHA-256 is not the one recorded at completion");
        zhashx_delete (self->verified, job->id);
        return -1;
    }
    zhashx_update (self->verified, job->id, strdup (stamp));
    return 0;
}

void
vdgx_outcheck_forget (vdgx_outcheck_t *self, const char *id)
{
    assert (self && id);
    zhashx_delete (self->verified, id);
}

void
vdgx_outcheck_test (bool verbose)
{
    (void) verbose;
    printf (" * vdgx_outcheck: ");
    char dir [] = "/tmp/vdgx-outcheck-XXXXXX";
    assert (mkdtemp (dir));
    char error [256], why [256], path [4096];
    vdgx_jobstore_t *store = vdgx_jobstore_new (dir, error, sizeof error);
    assert (store);
    vdgx_outcheck_t *check = vdgx_outcheck_new (store);
    vdgx_jobrec_t job;
    memset (&job, 0, sizeof job);
    snprintf (job.id, sizeof job.id, "o1");
    snprintf (job.state, sizeof job.state, "completed");
    job.size = 11;
    vdgx_sha256_hex ("video bytes", 11, job.sha256);
    //  No file: gone.
    assert (vdgx_outcheck_verify (check, &job, false, why, sizeof why) == -1 && strstr (why, "gone"));
    vdgx_jobstore_output_path (store, "o1", path, sizeof path);
    FILE *f = fopen (path, "w");
    assert (f);
    fputs ("video bytes", f);
    fclose (f);
    assert (vdgx_outcheck_verify (check, &job, false, why, sizeof why) == 0);
    assert (vdgx_outcheck_verify (check, &job, true, why, sizeof why) == 0);
    assert (vdgx_outcheck_verify (check, &job, true, why, sizeof why) == 0);     //  remembered
    vdgx_outcheck_forget (check, "o1");
    vdgx_outcheck_remember (check, &job);
    assert (zhashx_size (check->verified) == 1);
    //  Same size, other bytes (a new modification time): the hash is checked again.
    usleep (10000);
    f = fopen (path, "w");
    assert (f);
    fputs ("VIDEO BYTES", f);
    fclose (f);
    assert (vdgx_outcheck_verify (check, &job, false, why, sizeof why) == 0);    //  size only
    assert (vdgx_outcheck_verify (check, &job, true, why, sizeof why) == -1 && strstr (why, "SHA-256"));
    //  Truncated.
    assert (truncate (path, 3) == 0);
    assert (vdgx_outcheck_verify (check, &job, false, why, sizeof why) == -1 && strstr (why, "3 bytes"));
    vdgx_outcheck_forget (check, "o1");
    unlink (path);
    vdgx_outcheck_destroy (&check);
    assert (check == NULL);
    vdgx_jobstore_destroy (&store);
    vdgx_storecheck_remove (dir);
    printf ("OK\n");
}
