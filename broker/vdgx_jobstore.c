/*  vdgx_jobstore.c - SQLite job store and output files (see the header).
*/
#include "vdgx_jobstore.h"
#include "vdgx_sha256.h"
#include "vdgx_log.h"
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct _vdgx_jobstore_t {
    sqlite3 *db;
    char *dir;
    char *outdir;
    char *tmpdir;
    int64_t seq;
    zhashx_t *stmts;            //  SQL text -> prepared statement, compiled once
    bool batch;                 //  between vdgx_jobstore_begin and _commit
    bool in_tx;                 //  a transaction is open (the batch has written)
    bool outdir_dirty;          //  an output was renamed in: sync the folder before COMMIT
    uint64_t jobs, output_bytes;            //  health counters (committed)
    int64_t jobs_delta, bytes_delta;        //  changes of the open transaction
    zlist_t *unlinks;           //  outputs of deleted jobs, removed after COMMIT
    zlist_t *to_unlink;         //  deferred: committed deletes' outputs (take_unlinks)
    zlist_t *syncs;             //  outputs renamed in by the batch, synced before COMMIT
    bool deferred;              //  the caller syncs (synchronous=NORMAL): see take_syncs
    zlist_t *to_sync;           //  deferred: what the last commits left to sync, in order
    char *walpath;
    char *dbpath;
    int wal_frames;             //  frames in the WAL after the last commit (deferred mode)
};

#define S_COLUMNS "id, model, state, priority, seq, idem_key, cache_key, request, attempt, " \
                  "created_at, started_at, finished_at, err_code, err_msg, result, size, " \
                  "sha256, cached, owner"

static const char *s_schema =
    "CREATE TABLE IF NOT EXISTS jobs ("
    " id TEXT PRIMARY KEY, model TEXT NOT NULL, state TEXT NOT NULL,"
    " priority INTEGER NOT NULL, seq INTEGER NOT NULL, idem_key TEXT UNIQUE,"
    " cache_key TEXT, request BLOB NOT NULL, attempt INTEGER NOT NULL DEFAULT 0,"
    " created_at REAL NOT NULL, started_at REAL NOT NULL DEFAULT 0,"
    " finished_at REAL NOT NULL DEFAULT 0, err_code TEXT, err_msg TEXT, result BLOB,"
    " size INTEGER NOT NULL DEFAULT 0, sha256 TEXT, cached INTEGER NOT NULL DEFAULT 0,"
    " owner TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, priority, seq);"
    "CREATE INDEX IF NOT EXISTS jobs_cache ON jobs (cache_key);"
    "CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished_at);"
    "CREATE TABLE IF NOT EXISTS events ("
    " job_id TEXT NOT NULL, ts REAL NOT NULL, type TEXT NOT NULL, state TEXT, detail TEXT);"
    "CREATE INDEX IF NOT EXISTS events_job ON events (job_id);"
    "CREATE TABLE IF NOT EXISTS models (name TEXT PRIMARY KEY);"
    "CREATE TABLE IF NOT EXISTS model_limits (name TEXT PRIMARY KEY, limits BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v);";

void
vdgx_jobrec_clear (vdgx_jobrec_t *job)
{
    assert (job);
    free (job->request);
    free (job->result);
    memset (job, 0, sizeof *job);
}

bool
vdgx_state_terminal (const char *state)
{
    return streq (state, "completed") || streq (state, "failed")
        || streq (state, "cancelled") || streq (state, "expired");
}

bool
vdgx_jobrec_terminal (const vdgx_jobrec_t *job)
{
    return vdgx_state_terminal (job->state);
}

static void
s_copy_text (char *dst, size_t size, const unsigned char *src)
{
    snprintf (dst, size, "%s", src? (const char *) src: "");
}

static uint8_t *
s_copy_blob (sqlite3_stmt *st, int col, size_t *size)
{
    int n = sqlite3_column_bytes (st, col);
    const void *data = sqlite3_column_blob (st, col);
    *size = 0;
    if (!data || n <= 0)
        return NULL;
    uint8_t *copy = (uint8_t *) malloc (n);
    assert (copy);
    memcpy (copy, data, n);
    *size = n;
    return copy;
}

static void
s_row_to_job (sqlite3_stmt *st, vdgx_jobrec_t *job)
{
    memset (job, 0, sizeof *job);
    s_copy_text (job->id, sizeof job->id, sqlite3_column_text (st, 0));
    s_copy_text (job->model, sizeof job->model, sqlite3_column_text (st, 1));
    s_copy_text (job->state, sizeof job->state, sqlite3_column_text (st, 2));
    job->priority = sqlite3_column_int (st, 3);
    job->seq = sqlite3_column_int64 (st, 4);
    s_copy_text (job->idem_key, sizeof job->idem_key, sqlite3_column_text (st, 5));
    s_copy_text (job->cache_key, sizeof job->cache_key, sqlite3_column_text (st, 6));
    job->request = s_copy_blob (st, 7, &job->request_size);
    job->attempt = (uint32_t) sqlite3_column_int64 (st, 8);
    job->created_at = sqlite3_column_double (st, 9);
    job->started_at = sqlite3_column_double (st, 10);
    job->finished_at = sqlite3_column_double (st, 11);
    s_copy_text (job->err_code, sizeof job->err_code, sqlite3_column_text (st, 12));
    s_copy_text (job->err_msg, sizeof job->err_msg, sqlite3_column_text (st, 13));
    job->result = s_copy_blob (st, 14, &job->result_size);
    job->size = (uint64_t) sqlite3_column_int64 (st, 15);
    s_copy_text (job->sha256, sizeof job->sha256, sqlite3_column_text (st, 16));
    job->cached = sqlite3_column_int (st, 17) != 0;
    s_copy_text (job->owner, sizeof job->owner, sqlite3_column_text (st, 18));
}

static void
s_bind_text_or_null (sqlite3_stmt *st, int col, const char *text)
{
    if (text && *text)
        sqlite3_bind_text (st, col, text, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null (st, col);
}

static int
s_exec (vdgx_jobstore_t *self, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec (self->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        vdgx_log_error ("store.sql", "error=\"%s\"", msg? msg: sqlite3_errstr (rc));
        sqlite3_free (msg);
        return -1;
    }
    return 0;
}

//  Statements are compiled once and kept (keyed by their text): compiling costs more than
//  running most of them. s_release resets one for its next use.
static sqlite3_stmt *
s_prepare (vdgx_jobstore_t *self, const char *sql)
{
    sqlite3_stmt *st = (sqlite3_stmt *) zhashx_lookup (self->stmts, sql);
    if (st) {
        sqlite3_reset (st);
        sqlite3_clear_bindings (st);
        return st;
    }
    if (sqlite3_prepare_v3 (self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        vdgx_log_error ("store.prepare", "error=\"%s\"", sqlite3_errmsg (self->db));
        return NULL;
    }
    zhashx_insert (self->stmts, sql, st);
    return st;
}

static void
s_release (sqlite3_stmt *st)
{
    if (st)
        sqlite3_reset (st);
}

static void
s_stmt_destroy (void **item_p)
{
    sqlite3_finalize ((sqlite3_stmt *) *item_p);
    *item_p = NULL;
}

//  Health counters: applied at once outside a batch, at COMMIT inside one.
static void
s_adjust (vdgx_jobstore_t *self, int64_t jobs, int64_t bytes)
{
    if (self->in_tx) {
        self->jobs_delta += jobs;
        self->bytes_delta += bytes;
    }
    else {
        self->jobs += (uint64_t) jobs;
        self->output_bytes += (uint64_t) bytes;
    }
}

//  Every write goes through here: inside a batch, the first one opens the transaction.
static int
s_write_begin (vdgx_jobstore_t *self)
{
    if (!self->batch || self->in_tx)
        return 0;
    if (s_exec (self, "BEGIN IMMEDIATE"))
        return -1;
    self->in_tx = true;
    self->jobs_delta = self->bytes_delta = 0;
    return 0;
}

static void
s_clean_tmpdir (const char *tmpdir)
{
    DIR *d = opendir (tmpdir);
    if (!d)
        return;
    struct dirent *e;
    char path [4096];
    while ((e = readdir (d))) {
        if (e->d_name [0] == '.')
            continue;
        snprintf (path, sizeof path, "%s/%s", tmpdir, e->d_name);
        unlink (path);
    }
    closedir (d);
}

vdgx_jobstore_t *
vdgx_jobstore_new (const char *dir, char *error, size_t errsize)
{
    assert (dir && error);
    vdgx_jobstore_t *self = (vdgx_jobstore_t *) zmalloc (sizeof (vdgx_jobstore_t));
    assert (self);
    self->dir = strdup (dir);
    self->outdir = zsys_sprintf ("%s/out", dir);
    self->tmpdir = zsys_sprintf ("%s/tmp", dir);
    char *dbpath = zsys_sprintf ("%s/jobs.db", dir);
    if ((mkdir (dir, 0750) && errno != EEXIST)
    ||  (mkdir (self->outdir, 0750) && errno != EEXIST)
    ||  (mkdir (self->tmpdir, 0750) && errno != EEXIST)) {
        snprintf (error, errsize, "cannot create %s: %s", dir, strerror (errno));
        goto fail;
    }
    //  Temp files belong to results that were never verified; their jobs get re-run.
    s_clean_tmpdir (self->tmpdir);
    if (sqlite3_open_v2 (dbpath, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                         | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
        snprintf (error, errsize, "cannot open %s: %s", dbpath,
                  self->db? sqlite3_errmsg (self->db): "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout (self->db, 5000);
    self->unlinks = zlist_new ();
    zlist_autofree (self->unlinks);
    self->to_unlink = zlist_new ();
    zlist_autofree (self->to_unlink);
    self->syncs = zlist_new ();
    zlist_autofree (self->syncs);
    self->to_sync = zlist_new ();
    zlist_autofree (self->to_sync);
    self->walpath = zsys_sprintf ("%s/jobs.db-wal", dir);
    self->dbpath = zsys_sprintf ("%s", dbpath);
    self->stmts = zhashx_new ();
    zhashx_set_destructor (self->stmts, s_stmt_destroy);
    if (s_exec (self, "PRAGMA journal_mode=WAL;")
    ||  s_exec (self, "PRAGMA synchronous=FULL;")
    ||  s_exec (self, "PRAGMA foreign_keys=OFF;")
    ||  s_exec (self, s_schema)) {
        snprintf (error, errsize, "cannot initialise %s: %s", dbpath, sqlite3_errmsg (self->db));
        goto fail;
    }
    //  Stores from before job owners: every old job belongs to the operator ("").
    sqlite3_stmt *probe = NULL;
    if (sqlite3_prepare_v2 (self->db, "SELECT owner FROM jobs LIMIT 0", -1, &probe, NULL) != SQLITE_OK
    &&  s_exec (self, "ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';")) {
        snprintf (error, errsize, "cannot upgrade %s: %s", dbpath, sqlite3_errmsg (self->db));
        goto fail;
    }
    sqlite3_finalize (probe);
    //  The newest row holds the largest seq (rows get rowid max + 1 and seq in the same
    //  order): one lookup, not a scan of every job.
    sqlite3_stmt *st = s_prepare (self, "SELECT seq FROM jobs ORDER BY rowid DESC LIMIT 1");
    if (st && sqlite3_step (st) == SQLITE_ROW)
        self->seq = sqlite3_column_int64 (st, 0);
    s_release (st);
    //  Health counts once at open, then kept up to date by every write.
    st = s_prepare (self, "SELECT COUNT(*) FROM jobs");
    if (st && sqlite3_step (st) == SQLITE_ROW)
        self->jobs = (uint64_t) sqlite3_column_int64 (st, 0);
    s_release (st);
    st = s_prepare (self, "SELECT COALESCE(SUM(size), 0) FROM jobs WHERE state='completed'");
    if (st && sqlite3_step (st) == SQLITE_ROW)
        self->output_bytes = (uint64_t) sqlite3_column_int64 (st, 0);
    s_release (st);
    zstr_free (&dbpath);
    return self;
fail:
    zstr_free (&dbpath);
    vdgx_jobstore_destroy (&self);
    return NULL;
}

void
vdgx_jobstore_destroy (vdgx_jobstore_t **self_p)
{
    assert (self_p);
    vdgx_jobstore_t *self = *self_p;
    if (self) {
        if (self->in_tx)
            s_exec (self, "ROLLBACK");
        zhashx_destroy (&self->stmts);
        zlist_destroy (&self->unlinks);
        zlist_destroy (&self->to_unlink);
        zlist_destroy (&self->syncs);
        zlist_destroy (&self->to_sync);
        zstr_free (&self->walpath);
        zstr_free (&self->dbpath);
        if (self->db)
            sqlite3_close_v2 (self->db);
        free (self->dir);
        zstr_free (&self->outdir);
        zstr_free (&self->tmpdir);
        free (self);
        *self_p = NULL;
    }
}

int64_t
vdgx_jobstore_next_seq (vdgx_jobstore_t *self)
{
    assert (self);
    return ++self->seq;
}

//  Binds one column of a job row to parameter ?col (columns in S_COLUMNS order, from 1).
static void
s_bind_column (sqlite3_stmt *st, const vdgx_jobrec_t *job, int col)
{
    switch (col) {
        case 1: sqlite3_bind_text (st, 1, job->id, -1, SQLITE_TRANSIENT); break;
        case 2: sqlite3_bind_text (st, 2, job->model, -1, SQLITE_TRANSIENT); break;
        case 3: sqlite3_bind_text (st, 3, job->state, -1, SQLITE_TRANSIENT); break;
        case 4: sqlite3_bind_int (st, 4, job->priority); break;
        case 5: sqlite3_bind_int64 (st, 5, job->seq); break;
        case 6: s_bind_text_or_null (st, 6, job->idem_key); break;
        case 7: s_bind_text_or_null (st, 7, job->cache_key); break;
        case 8: sqlite3_bind_blob (st, 8, job->request? (const void *) job->request: "",
                                   (int) job->request_size, SQLITE_TRANSIENT); break;
        case 9: sqlite3_bind_int64 (st, 9, job->attempt); break;
        case 10: sqlite3_bind_double (st, 10, job->created_at); break;
        case 11: sqlite3_bind_double (st, 11, job->started_at); break;
        case 12: sqlite3_bind_double (st, 12, job->finished_at); break;
        case 13: s_bind_text_or_null (st, 13, job->err_code); break;
        case 14: s_bind_text_or_null (st, 14, job->err_msg); break;
        case 15:
            if (job->result && job->result_size)
                sqlite3_bind_blob (st, 15, job->result, (int) job->result_size, SQLITE_TRANSIENT);
            else
                sqlite3_bind_null (st, 15);
            break;
        case 16: sqlite3_bind_int64 (st, 16, (int64_t) job->size); break;
        case 17: s_bind_text_or_null (st, 17, job->sha256); break;
        case 18: sqlite3_bind_int (st, 18, job->cached? 1: 0); break;
        case 19: sqlite3_bind_text (st, 19, job->owner, -1, SQLITE_TRANSIENT); break;
        default: assert (false);
    }
}

#define S_NCOLUMNS 19

static void
s_bind_job (sqlite3_stmt *st, const vdgx_jobrec_t *job)
{
    for (int col = 1; col <= S_NCOLUMNS; col++)
        s_bind_column (st, job, col);
}

static int
s_step_done (vdgx_jobstore_t *self, sqlite3_stmt *st)
{
    int rc = sqlite3_step (st);
    s_release (st);
    if (rc != SQLITE_DONE) {
        vdgx_log_warn ("store.step", "error=\"%s\"", sqlite3_errmsg (self->db));
        return -1;
    }
    return 0;
}

int
vdgx_jobstore_insert (vdgx_jobstore_t *self, const vdgx_jobrec_t *job)
{
    assert (self && job);
    if (s_write_begin (self))
        return -1;
    sqlite3_stmt *st = s_prepare (self, "INSERT INTO jobs (" S_COLUMNS ") VALUES "
                                  "(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19)");
    if (!st)
        return -1;
    s_bind_job (st, job);
    if (s_step_done (self, st))
        return -1;
    s_adjust (self, 1, streq (job->state, "completed")? (int64_t) job->size: 0);
    return 0;
}

//  The output bytes a row counts for now (completed jobs only); -1 when there is no row.
static int64_t
s_counted_bytes (vdgx_jobstore_t *self, const char *id)
{
    sqlite3_stmt *st = s_prepare (self, "SELECT state, size FROM jobs WHERE id=?1");
    int64_t bytes = -1;
    if (st) {
        sqlite3_bind_text (st, 1, id, -1, SQLITE_TRANSIENT);
        if (sqlite3_step (st) == SQLITE_ROW)
            bytes = streq ((const char *) sqlite3_column_text (st, 0), "completed")
                  ? sqlite3_column_int64 (st, 1): 0;
    }
    s_release (st);
    return bytes;
}

//  True when column col of the row under st (read with S_COLUMNS) differs from job's value
//  as s_bind_column would store it (an empty text is stored as NULL, read back as "").
static bool
s_column_differs (sqlite3_stmt *st, const vdgx_jobrec_t *job, int col)
{
    int i = col - 1;
    const char *text = NULL;
    switch (col) {
        case 1: return false;                   //  the key
        case 2: text = job->model; break;
        case 3: text = job->state; break;
        case 4: return sqlite3_column_int (st, i) != job->priority;
        case 5: return sqlite3_column_int64 (st, i) != job->seq;
        case 6: text = job->idem_key; break;
        case 7: text = job->cache_key; break;
        case 8:
        case 15: {
            const void *data = col == 8? (const void *) job->request: (const void *) job->result;
            size_t size = col == 8? job->request_size: job->result_size;
            if (!data)
                size = 0;
            //  A NULL result and an empty request both read back as zero bytes; the
            //  column's type tells them apart where it matters.
            if (col == 15 && size == 0)
                return sqlite3_column_type (st, i) != SQLITE_NULL;
            if (col == 8 && sqlite3_column_type (st, i) != SQLITE_BLOB)
                return true;
            const void *have = sqlite3_column_blob (st, i);
            size_t have_size = (size_t) sqlite3_column_bytes (st, i);
            return have_size != size || (size && memcmp (have, data, size) != 0);
        }
        case 9: return sqlite3_column_int64 (st, i) != (int64_t) job->attempt;
        case 10: return sqlite3_column_double (st, i) != job->created_at;
        case 11: return sqlite3_column_double (st, i) != job->started_at;
        case 12: return sqlite3_column_double (st, i) != job->finished_at;
        case 13: text = job->err_code; break;
        case 14: text = job->err_msg; break;
        case 16: return sqlite3_column_int64 (st, i) != (int64_t) job->size;
        case 17: text = job->sha256; break;
        case 18: return sqlite3_column_int (st, i) != (job->cached? 1: 0);
        case 19: text = job->owner; break;
        default: assert (false);
    }
    //  Texts: NULL and "" are one value for the columns bound with s_bind_text_or_null;
    //  model, state and owner are always bound as text, so their type must match too.
    bool always_text = col == 2 || col == 3 || col == 19;
    if (always_text && sqlite3_column_type (st, i) != SQLITE_TEXT)
        return true;
    const char *have = (const char *) sqlite3_column_text (st, i);
    return strcmp (have? have: "", text? text: "") != 0;
}

//  Writes the columns that changed, and only those: SQLite rewrites every index on a column
//  named in SET, changed or not, and a full-row UPDATE touches all four of the jobs table's
//  indexes where a state change needs one. A row that is not there is left alone.
int
vdgx_jobstore_update (vdgx_jobstore_t *self, const vdgx_jobrec_t *job)
{
    assert (self && job);
    static const char *names [S_NCOLUMNS + 1] = {
        NULL, "id", "model", "state", "priority", "seq", "idem_key", "cache_key", "request",
        "attempt", "created_at", "started_at", "finished_at", "err_code", "err_msg", "result",
        "size", "sha256", "cached", "owner"
    };
    sqlite3_stmt *st = s_prepare (self, "SELECT " S_COLUMNS " FROM jobs WHERE id=?1");
    if (!st || s_write_begin (self))
        return -1;
    sqlite3_bind_text (st, 1, job->id, -1, SQLITE_TRANSIENT);
    int step = sqlite3_step (st);
    if (step != SQLITE_ROW) {
        s_release (st);
        return step == SQLITE_DONE? 0: -1;
    }
    uint32_t changed = 0;
    for (int col = 2; col <= S_NCOLUMNS; col++)
        if (s_column_differs (st, job, col))
            changed |= 1u << col;
    //  The output bytes the row counts for now (completed jobs only), for the health totals.
    const char *state = (const char *) sqlite3_column_text (st, 2);
    int64_t before = state && streq (state, "completed")? sqlite3_column_int64 (st, 15): 0;
    s_release (st);
    if (!changed)
        return 0;
    char sql [512];
    size_t len = (size_t) snprintf (sql, sizeof sql, "UPDATE jobs SET");
    const char *sep = " ";
    for (int col = 2; col <= S_NCOLUMNS; col++)
        if (changed & (1u << col)) {
            len += (size_t) snprintf (sql + len, sizeof sql - len, "%s%s=?%d", sep, names [col], col);
            sep = ", ";
        }
    snprintf (sql + len, sizeof sql - len, " WHERE id=?1");
    st = s_prepare (self, sql);
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, job->id, -1, SQLITE_TRANSIENT);
    for (int col = 2; col <= S_NCOLUMNS; col++)
        if (changed & (1u << col))
            s_bind_column (st, job, col);
    if (s_step_done (self, st))
        return -1;
    s_adjust (self, 0, (streq (job->state, "completed")? (int64_t) job->size: 0) - before);
    return 0;
}

static int
s_get_one (vdgx_jobstore_t *self, const char *sql, const char *arg, vdgx_jobrec_t *job)
{
    memset (job, 0, sizeof *job);
    sqlite3_stmt *st = s_prepare (self, sql);
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, arg, -1, SQLITE_TRANSIENT);
    int rc = -1;
    if (sqlite3_step (st) == SQLITE_ROW) {
        s_row_to_job (st, job);
        rc = 0;
    }
    s_release (st);
    return rc;
}

int
vdgx_jobstore_get (vdgx_jobstore_t *self, const char *id, vdgx_jobrec_t *job)
{
    assert (self && id && job);
    return s_get_one (self, "SELECT " S_COLUMNS " FROM jobs WHERE id=?1", id, job);
}

int
vdgx_jobstore_find_idem (vdgx_jobstore_t *self, const char *key, vdgx_jobrec_t *job)
{
    assert (self && key && job);
    return s_get_one (self, "SELECT " S_COLUMNS " FROM jobs WHERE idem_key=?1", key, job);
}

int
vdgx_jobstore_find_cached (vdgx_jobstore_t *self, const char *cache_key, vdgx_jobrec_t *job)
{
    assert (self && cache_key && job);
    sqlite3_stmt *st = s_prepare (self, "SELECT " S_COLUMNS " FROM jobs WHERE cache_key=?1"
                                  " AND state='completed' ORDER BY finished_at DESC");
    memset (job, 0, sizeof *job);
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, cache_key, -1, SQLITE_TRANSIENT);
    int rc = -1;
    char path [4096];
    while (sqlite3_step (st) == SQLITE_ROW) {
        s_row_to_job (st, job);
        vdgx_jobstore_output_path (self, job->id, path, sizeof path);
        if (access (path, R_OK) == 0) {
            rc = 0;
            break;
        }
        vdgx_jobrec_clear (job);
    }
    s_release (st);
    return rc;
}

int
vdgx_jobstore_delete (vdgx_jobstore_t *self, const char *id)
{
    assert (self && id);
    if (s_write_begin (self))
        return -1;
    int64_t bytes = s_counted_bytes (self, id);
    if (bytes < 0)
        return -1;
    sqlite3_stmt *st = s_prepare (self, "DELETE FROM jobs WHERE id=?1");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, id, -1, SQLITE_TRANSIENT);
    if (s_step_done (self, st))
        return -1;
    if (sqlite3_changes (self->db) == 0)
        return -1;
    s_adjust (self, -1, -bytes);
    st = s_prepare (self, "DELETE FROM events WHERE job_id=?1");
    if (st) {
        sqlite3_bind_text (st, 1, id, -1, SQLITE_TRANSIENT);
        s_step_done (self, st);
    }
    char path [4096];
    vdgx_jobstore_output_path (self, id, path, sizeof path);
    //  In a batch the file goes after COMMIT: a crash before it must not leave a completed
    //  row without its output.
    if (self->in_tx)
        zlist_append (self->unlinks, path);
    else
        unlink (path);
    return 0;
}

static void
s_job_destroy (void **item_p)
{
    vdgx_jobrec_t *job = (vdgx_jobrec_t *) *item_p;
    if (job) {
        vdgx_jobrec_clear (job);
        free (job);
        *item_p = NULL;
    }
}

static zlistx_t *
s_collect (sqlite3_stmt *st)
{
    zlistx_t *list = zlistx_new ();
    zlistx_set_destructor (list, s_job_destroy);
    while (st && sqlite3_step (st) == SQLITE_ROW) {
        vdgx_jobrec_t *job = (vdgx_jobrec_t *) malloc (sizeof (vdgx_jobrec_t));
        assert (job);
        s_row_to_job (st, job);
        zlistx_add_end (list, job);
    }
    s_release (st);
    return list;
}

zlistx_t *
vdgx_jobstore_list (vdgx_jobstore_t *self, const char *state, const char *model,
                    const char *after, size_t limit, bool desc)
{
    return vdgx_jobstore_list_owned (self, NULL, state, model, after, limit, desc);
}

zlistx_t *
vdgx_jobstore_list_owned (vdgx_jobstore_t *self, const char *owner, const char *state,
                          const char *model, const char *after, size_t limit, bool desc)
{
    assert (self);
    sqlite3_stmt *st = desc
        ? s_prepare (self, "SELECT " S_COLUMNS " FROM jobs WHERE"
                     " (?1 = '' OR state = ?1) AND (?2 = '' OR model = ?2)"
                     " AND (?3 = '' OR id < ?3) AND (?5 IS NULL OR owner = ?5)"
                     " ORDER BY id DESC LIMIT ?4")
        : s_prepare (self, "SELECT " S_COLUMNS " FROM jobs WHERE"
                     " (?1 = '' OR state = ?1) AND (?2 = '' OR model = ?2)"
                     " AND id > ?3 AND (?5 IS NULL OR owner = ?5) ORDER BY id LIMIT ?4");
    if (st) {
        if (owner)
            sqlite3_bind_text (st, 5, owner, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text (st, 1, state? state: "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text (st, 2, model? model: "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text (st, 3, after? after: "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64 (st, 4, (int64_t) limit + 1);
    }
    return s_collect (st);
}

int
vdgx_jobstore_each_unfinished (vdgx_jobstore_t *self, vdgx_jobstore_visit_fn *visit, void *arg)
{
    assert (self && visit);
    //  Two index ranges merged (no sort of the whole queue), and only the columns the
    //  queue needs: a restart with a million queued jobs reads ids, not requests (the
    //  owner's quota wants only the request's size, which SQLite knows without reading it).
    sqlite3_stmt *st = s_prepare (self,
        "SELECT id, model, state, priority, seq, attempt, owner, length(request) FROM jobs"
        " WHERE state='queued' UNION ALL SELECT id, model, state, priority, seq, attempt, owner,"
        " length(request) FROM jobs WHERE state='running' ORDER BY priority, seq");
    if (!st)
        return -1;
    size_t n = 0;
    int rc;
    vdgx_jobrec_t job;
    while ((rc = sqlite3_step (st)) == SQLITE_ROW) {
        memset (&job, 0, sizeof job);
        s_copy_text (job.id, sizeof job.id, sqlite3_column_text (st, 0));
        s_copy_text (job.model, sizeof job.model, sqlite3_column_text (st, 1));
        s_copy_text (job.state, sizeof job.state, sqlite3_column_text (st, 2));
        job.priority = sqlite3_column_int (st, 3);
        job.seq = sqlite3_column_int64 (st, 4);
        job.attempt = (uint32_t) sqlite3_column_int64 (st, 5);
        s_copy_text (job.owner, sizeof job.owner, sqlite3_column_text (st, 6));
        job.request_size = (size_t) sqlite3_column_int64 (st, 7);
        visit (&job, arg);
        n++;
    }
    s_release (st);
    return rc == SQLITE_DONE? (int) (n > INT32_MAX? INT32_MAX: n): -1;
}

int
vdgx_jobstore_add_event (vdgx_jobstore_t *self, const char *id, const char *type,
                         const char *state, const char *detail, double ts)
{
    assert (self && id && type);
    if (s_write_begin (self))
        return -1;
    sqlite3_stmt *st = s_prepare (self, "INSERT INTO events (job_id, ts, type, state, detail)"
                                  " VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double (st, 2, ts);
    sqlite3_bind_text (st, 3, type, -1, SQLITE_TRANSIENT);
    s_bind_text_or_null (st, 4, state);
    s_bind_text_or_null (st, 5, detail);
    return s_step_done (self, st);
}

size_t
vdgx_jobstore_event_count (vdgx_jobstore_t *self, const char *id)
{
    assert (self && id);
    sqlite3_stmt *st = s_prepare (self, "SELECT COUNT(*) FROM events WHERE job_id=?1");
    size_t n = 0;
    if (st) {
        sqlite3_bind_text (st, 1, id, -1, SQLITE_TRANSIENT);
        if (sqlite3_step (st) == SQLITE_ROW)
            n = (size_t) sqlite3_column_int64 (st, 0);
        s_release (st);
    }
    return n;
}

int
vdgx_jobstore_model_add (vdgx_jobstore_t *self, const char *name)
{
    assert (self && name);
    if (s_write_begin (self))
        return -1;
    sqlite3_stmt *st = s_prepare (self, "INSERT OR IGNORE INTO models (name) VALUES (?1)");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, name, -1, SQLITE_TRANSIENT);
    return s_step_done (self, st);
}

int
vdgx_jobstore_limits_delete (vdgx_jobstore_t *self, const char *name)
{
    assert (self && name);
    sqlite3_stmt *st = s_prepare (self, "DELETE FROM model_limits WHERE name = ?1");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, name, -1, SQLITE_TRANSIENT);
    return s_step_done (self, st);
}

int
vdgx_jobstore_limits_set (vdgx_jobstore_t *self, const char *name, const void *data, size_t size)
{
    assert (self && name && data);
    if (s_write_begin (self))
        return -1;
    sqlite3_stmt *st = s_prepare (self, "INSERT OR REPLACE INTO model_limits (name, limits) VALUES (?1, ?2)");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob (st, 2, data, (int) size, SQLITE_TRANSIENT);
    return s_step_done (self, st);
}

zframe_t *
vdgx_jobstore_limits_get (vdgx_jobstore_t *self, const char *name)
{
    assert (self && name);
    sqlite3_stmt *st = s_prepare (self, "SELECT limits FROM model_limits WHERE name = ?1");
    zframe_t *frame = NULL;
    if (st) {
        sqlite3_bind_text (st, 1, name, -1, SQLITE_TRANSIENT);
        if (sqlite3_step (st) == SQLITE_ROW)
            frame = zframe_new (sqlite3_column_blob (st, 0), (size_t) sqlite3_column_bytes (st, 0));
    }
    s_release (st);
    return frame;
}

zlist_t *
vdgx_jobstore_models (vdgx_jobstore_t *self)
{
    assert (self);
    zlist_t *list = zlist_new ();
    zlist_autofree (list);
    sqlite3_stmt *st = s_prepare (self, "SELECT name FROM models ORDER BY name");
    while (st && sqlite3_step (st) == SQLITE_ROW)
        zlist_append (list, (void *) sqlite3_column_text (st, 0));
    s_release (st);
    return list;
}

void
vdgx_jobstore_output_path (vdgx_jobstore_t *self, const char *id, char *buf, size_t size)
{
    assert (self && id && buf);
    snprintf (buf, size, "%s/%s.mp4", self->outdir, id);
}

void
vdgx_jobstore_temp_path (vdgx_jobstore_t *self, const char *id, uint32_t attempt,
                         char *buf, size_t size)
{
    assert (self && id && buf);
    snprintf (buf, size, "%s/%s.%u.part", self->tmpdir, id, attempt);
}

//  Syncs a file, or a folder (its entries: a rename into it).
static void
s_fsync_path (const char *path)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync (fd);
        close (fd);
    }
}

static void
s_fsync_dir (const char *dir)
{
    s_fsync_path (dir);
}

int
vdgx_jobstore_commit_output (vdgx_jobstore_t *self, const char *id, uint32_t attempt,
                             uint64_t size, const char *sha256, char *error, size_t errsize)
{
    return vdgx_jobstore_commit_output_hashed (self, id, attempt, size, sha256, NULL, error,
                                               errsize);
}

int
vdgx_jobstore_commit_output_hashed (vdgx_jobstore_t *self, const char *id, uint32_t attempt,
                                    uint64_t size, const char *sha256, const char *written,
                                    char *error, size_t errsize)
{
    assert (self && id && sha256 && error);
    char tmp [4096], out [4096];
    vdgx_jobstore_temp_path (self, id, attempt, tmp, sizeof tmp);
    vdgx_jobstore_output_path (self, id, out, sizeof out);
    struct stat sb;
    char hex [VDGX_SHA256_HEX_SIZE];
    if (stat (tmp, &sb)) {
        snprintf (error, errsize, "no output received");
        return -1;
    }
    if ((uint64_t) sb.st_size != size) {
        snprintf (error, errsize, "output is %llu bytes, worker said %llu",
                  (unsigned long long) sb.st_size, (unsigned long long) size);
        unlink (tmp);
        return -1;
    }
    //  The caller that hashed the bytes as it wrote them saves reading the file again
    //  (a whole video, on the broker thread).
    if (written)
        snprintf (hex, sizeof hex, "%s", written);
    else
    if (vdgx_sha256_file (tmp, hex))
        *hex = 0;
    if (!*hex || !streq (hex, sha256)) {
        snprintf (error, errsize, "output sha256 mismatch");
        unlink (tmp);
        return -1;
    }
    //  The file and its rename must be durable before the job's row says completed. Alone:
    //  sync, rename, sync the folder. In a batch the syncs wait for vdgx_jobstore_commit,
    //  which syncs every output of the batch (each file once) and the folder once, then
    //  COMMITs: one journal flush covers them all. Until that COMMIT the row does not say
    //  completed, so a crash in between re-runs the job and its new output replaces this.
    if (!self->batch) {
        s_fsync_path (tmp);
        if (rename (tmp, out)) {
            snprintf (error, errsize, "rename: %s", strerror (errno));
            unlink (tmp);
            return -1;
        }
        s_fsync_dir (self->outdir);
        return 0;
    }
    if (rename (tmp, out)) {
        snprintf (error, errsize, "rename: %s", strerror (errno));
        unlink (tmp);
        return -1;
    }
    zlist_append (self->syncs, out);
    self->outdir_dirty = true;
    return 0;
}

int
vdgx_jobstore_share_output (vdgx_jobstore_t *self, const char *from, const char *id)
{
    assert (self && from && id);
    char src [4096], dst [4096], tmp [4096];
    vdgx_jobstore_output_path (self, from, src, sizeof src);
    vdgx_jobstore_output_path (self, id, dst, sizeof dst);
    if (link (src, dst) == 0)
        return 0;
    //  No hard links (another file system feature set): copy through a temp file.
    vdgx_jobstore_temp_path (self, id, 0, tmp, sizeof tmp);
    FILE *in = fopen (src, "rb");
    FILE *outf = in? fopen (tmp, "wb"): NULL;
    int rc = -1;
    if (in && outf) {
        char buf [65536];
        size_t n;
        rc = 0;
        while ((n = fread (buf, 1, sizeof buf, in)) > 0)
            if (fwrite (buf, 1, n, outf) != n)
                rc = -1;
        if (ferror (in))
            rc = -1;
    }
    if (in)
        fclose (in);
    if (outf && fclose (outf))
        rc = -1;
    if (rc == 0 && rename (tmp, dst))
        rc = -1;
    if (rc)
        unlink (tmp);
    return rc;
}

size_t
vdgx_jobstore_gc (vdgx_jobstore_t *self, double now, double retain_s, uint64_t retain_bytes)
{
    assert (self);
    size_t deleted = 0;
    zlist_t *victims = zlist_new ();
    zlist_autofree (victims);
    if (retain_s > 0) {
        sqlite3_stmt *st = s_prepare (self, "SELECT id FROM jobs WHERE state IN ('completed',"
                                      " 'failed', 'cancelled', 'expired') AND finished_at < ?1");
        if (st) {
            sqlite3_bind_double (st, 1, now - retain_s);
            while (sqlite3_step (st) == SQLITE_ROW)
                zlist_append (victims, (void *) sqlite3_column_text (st, 0));
            s_release (st);
        }
    }
    for (char *id = (char *) zlist_first (victims); id; id = (char *) zlist_next (victims))
        if (vdgx_jobstore_delete (self, id) == 0)
            deleted++;
    zlist_purge (victims);
    if (retain_bytes > 0) {
        sqlite3_stmt *st = s_prepare (self, "SELECT id, size FROM jobs WHERE state='completed'"
                                      " ORDER BY finished_at DESC");
        uint64_t total = 0;
        while (st && sqlite3_step (st) == SQLITE_ROW) {
            total += (uint64_t) sqlite3_column_int64 (st, 1);
            //  Newest first: everything past the cap goes.
            if (total > retain_bytes)
                zlist_append (victims, (void *) sqlite3_column_text (st, 0));
        }
        s_release (st);
        for (char *id = (char *) zlist_first (victims); id; id = (char *) zlist_next (victims))
            if (vdgx_jobstore_delete (self, id) == 0)
                deleted++;
    }
    zlist_destroy (&victims);
    return deleted;
}

int
vdgx_jobstore_health (vdgx_jobstore_t *self, uint64_t *jobs, uint64_t *output_bytes)
{
    assert (self);
    //  The counts are kept by every write (no table scan); the query only proves that the
    //  database still answers.
    sqlite3_stmt *st = s_prepare (self, "SELECT 1 FROM models LIMIT 1");
    int step = st? sqlite3_step (st): SQLITE_ERROR;
    s_release (st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return -1;
    if (jobs)
        *jobs = self->jobs + (uint64_t) self->jobs_delta;
    if (output_bytes)
        *output_bytes = self->output_bytes + (uint64_t) self->bytes_delta;
    return 0;
}

//  Replaces SQLite's automatic checkpoint: counts the WAL's frames after each commit.
static int
s_wal_hook (void *arg, sqlite3 *db, const char *name, int frames)
{
    (void) db;
    (void) name;
    ((vdgx_jobstore_t *) arg)->wal_frames = frames;
    return SQLITE_OK;
}

int
vdgx_jobstore_defer_sync (vdgx_jobstore_t *self)
{
    assert (self);
    if (s_exec (self, "PRAGMA synchronous=NORMAL;"))
        return -1;
    //  A checkpoint copies the WAL into the database file and syncs both: milliseconds of
    //  disk wait that must not sit on the broker thread. SQLite's automatic one is turned
    //  off (a WAL hook of our own replaces it); the caller checkpoints from another
    //  connection on another thread when vdgx_jobstore_wal_frames says the WAL is long.
    sqlite3_wal_hook (self->db, s_wal_hook, self);
    self->deferred = true;
    return 0;
}

int
vdgx_jobstore_wal_frames (vdgx_jobstore_t *self)
{
    assert (self);
    return self->wal_frames;
}

const char *
vdgx_jobstore_db_path (vdgx_jobstore_t *self)
{
    assert (self);
    return self->dbpath;
}

//  Hands over *list_p (NULL when empty) and leaves a new empty one in its place.
static zlist_t *
s_take (zlist_t **list_p)
{
    if (zlist_size (*list_p) == 0)
        return NULL;
    zlist_t *list = *list_p;
    *list_p = zlist_new ();
    zlist_autofree (*list_p);
    return list;
}

zlist_t *
vdgx_jobstore_take_syncs (vdgx_jobstore_t *self)
{
    assert (self);
    return s_take (&self->to_sync);
}

zlist_t *
vdgx_jobstore_take_unlinks (vdgx_jobstore_t *self)
{
    assert (self);
    return s_take (&self->to_unlink);
}

void
vdgx_jobstore_begin (vdgx_jobstore_t *self)
{
    assert (self);
    assert (!self->batch);
    self->batch = true;
}

bool
vdgx_jobstore_pending (vdgx_jobstore_t *self)
{
    assert (self);
    return self->in_tx || self->outdir_dirty;
}

int
vdgx_jobstore_commit (vdgx_jobstore_t *self)
{
    assert (self);
    int rc = 0;
    if (self->outdir_dirty) {
        //  Files first, then the folder that names them (deferred: the caller does the same).
        for (char *path = (char *) zlist_first (self->syncs); path;
             path = (char *) zlist_next (self->syncs)) {
            if (self->deferred)
                zlist_append (self->to_sync, path);
            else
                s_fsync_path (path);
        }
        zlist_purge (self->syncs);
        if (self->deferred)
            zlist_append (self->to_sync, self->outdir);
        else
            s_fsync_dir (self->outdir);
        self->outdir_dirty = false;
    }
    if (self->in_tx) {
        if (s_exec (self, "COMMIT")) {
            //  Nothing of the batch is durable: undo it all (SQLite may have done so).
            if (!sqlite3_get_autocommit (self->db))
                s_exec (self, "ROLLBACK");
            zlist_purge (self->unlinks);
            rc = -1;
        }
        else {
            if (self->deferred)
                zlist_append (self->to_sync, self->walpath);
            self->jobs += (uint64_t) self->jobs_delta;
            self->output_bytes += (uint64_t) self->bytes_delta;
            //  Deferred: the caller removes them once the batch is durable (a crash
            //  before that must not bring the job back without its file).
            for (char *path = (char *) zlist_first (self->unlinks); path;
                 path = (char *) zlist_next (self->unlinks)) {
                if (self->deferred)
                    zlist_append (self->to_unlink, path);
                else
                    unlink (path);
            }
            zlist_purge (self->unlinks);
        }
        self->jobs_delta = self->bytes_delta = 0;
        self->in_tx = false;
    }
    self->batch = false;
    return rc;
}

int
vdgx_jobstore_probe (vdgx_jobstore_t *self, char *error, size_t errsize)
{
    assert (self && error);
    //  The output side: a block of the size of a typical chunk, made durable, then removed.
    char path [4096];
    snprintf (path, sizeof path, "%s/.probe", self->tmpdir);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf (error, errsize, "cannot create %s: %s", path, strerror (errno));
        return -1;
    }
    static char block [65536];
    ssize_t n = write (fd, block, sizeof block);
    int err = n < 0? errno: n != (ssize_t) sizeof block? ENOSPC: 0;
    if (!err && fsync (fd))
        err = errno;
    close (fd);
    unlink (path);
    if (err) {
        snprintf (error, errsize, "cannot write %s: %s", self->tmpdir, strerror (err));
        return -1;
    }
    //  The database side: one committed row.
    sqlite3_stmt *st = s_prepare (self, "INSERT OR REPLACE INTO meta (k, v) VALUES ('probe', ?1)");
    if (!st) {
        snprintf (error, errsize, "%s", sqlite3_errmsg (self->db));
        return -1;
    }
    sqlite3_bind_double (st, 1, zclock_time () / 1000.0);
    if (s_step_done (self, st)) {
        snprintf (error, errsize, "database: %s", sqlite3_errmsg (self->db));
        return -1;
    }
    return 0;
}

int
vdgx_jobstore_checkpoint (vdgx_jobstore_t *self)
{
    assert (self);
    //  TRUNCATE: copies the WAL into the main file and empties it. Copying alone is not
    //  enough: a WAL cut short after a crash can still hold a valid prefix of old frames,
    //  which SQLite would then read instead of the newer pages in the main file. Never
    //  waits: when a reader (vdgx backup) holds the WAL, this try is skipped.
    sqlite3_busy_timeout (self->db, 0);
    int rc = sqlite3_wal_checkpoint_v2 (self->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    sqlite3_busy_timeout (self->db, 5000);
    return rc == SQLITE_OK? 0: -1;
}

void
vdgx_jobstore_flush (vdgx_jobstore_t *self)
{
    assert (self);
    sqlite3_wal_checkpoint_v2 (self->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
}

static void
s_test_job (vdgx_jobrec_t *job, const char *id, const char *model, const char *state, int prio,
            int64_t seq, double finished)
{
    memset (job, 0, sizeof *job);
    snprintf (job->id, sizeof job->id, "%s", id);
    snprintf (job->model, sizeof job->model, "%s", model);
    snprintf (job->state, sizeof job->state, "%s", state);
    job->priority = prio;
    job->seq = seq;
    job->request = (uint8_t *) strdup ("\x81\xa1k\x01");
    job->request_size = 4;
    job->created_at = 1000 + seq;
    job->finished_at = finished;
}

static void
s_test_visit (const vdgx_jobrec_t *job, void *arg)
{
    char *seen = (char *) arg;
    assert (job->request == NULL && job->request_size == 4 && job->seq > 0);
    strcat (seen, job->id);
    strcat (seen, ",");
}

static void
s_test_write (const char *path, const char *text)
{
    FILE *f = fopen (path, "wb");
    assert (f);
    fputs (text, f);
    fclose (f);
}

void
vdgx_jobstore_test (bool verbose)
{
    printf (" * vdgx_jobstore: ");
    char dir [] = "/tmp/vdgx-jobstore-XXXXXX";
    assert (mkdtemp (dir));
    char error [256];
    vdgx_jobstore_t *store = vdgx_jobstore_new (dir, error, sizeof error);
    assert (store);
    vdgx_jobrec_t job, got;
    s_test_job (&job, "a1", "m", "queued", 1, vdgx_jobstore_next_seq (store), 0);
    snprintf (job.idem_key, sizeof job.idem_key, "key-1");
    assert (vdgx_jobstore_insert (store, &job) == 0);
    //  Same id or same idempotency key: refused.
    assert (vdgx_jobstore_insert (store, &job) == -1);
    vdgx_jobrec_clear (&job);
    s_test_job (&job, "a2", "m", "running", 0, vdgx_jobstore_next_seq (store), 0);
    assert (vdgx_jobstore_insert (store, &job) == 0);
    vdgx_jobrec_clear (&job);
    s_test_job (&job, "a3", "n", "failed", 1, vdgx_jobstore_next_seq (store), 10);
    snprintf (job.err_code, sizeof job.err_code, "worker_failed");
    assert (vdgx_jobstore_insert (store, &job) == 0);
    vdgx_jobrec_clear (&job);
    assert (vdgx_jobstore_get (store, "a3", &got) == 0);
    assert (streq (got.err_code, "worker_failed") && got.request_size == 4
            && memcmp (got.request, "\x81\xa1k\x01", 4) == 0 && got.seq == 3);
    vdgx_jobrec_clear (&got);
    assert (vdgx_jobstore_get (store, "nope", &got) == -1);
    assert (vdgx_jobstore_find_idem (store, "key-1", &got) == 0 && streq (got.id, "a1"));
    vdgx_jobrec_clear (&got);
    //  Unfinished: by priority, then seq, queued and running together.
    char seen [64] = "";
    assert (vdgx_jobstore_each_unfinished (store, s_test_visit, seen) == 2);
    assert (streq (seen, "a2,a1,"));
    zlistx_t *list = vdgx_jobstore_list (store, "", "m", "", 100, false);
    assert (zlistx_size (list) == 2);
    zlistx_destroy (&list);
    list = vdgx_jobstore_list (store, "", "", "a1", 1, false);
    assert (zlistx_size (list) == 2);      //  limit + 1: has_more
    assert (streq (((vdgx_jobrec_t *) zlistx_first (list))->id, "a2"));
    zlistx_destroy (&list);
    //  Newest first, and below a cursor.
    list = vdgx_jobstore_list (store, "", "", "", 100, true);
    assert (zlistx_size (list) == 3 && streq (((vdgx_jobrec_t *) zlistx_first (list))->id, "a3"));
    zlistx_destroy (&list);
    list = vdgx_jobstore_list (store, "", "", "a3", 1, true);
    assert (zlistx_size (list) == 2 && streq (((vdgx_jobrec_t *) zlistx_first (list))->id, "a2"));
    zlistx_destroy (&list);
    //  Output: a wrong sha256 is refused, the right one renamed into place.
    char tmp [4096], out [4096], hex [VDGX_SHA256_HEX_SIZE];
    vdgx_jobstore_temp_path (store, "a2", 1, tmp, sizeof tmp);
    s_test_write (tmp, "video bytes");
    vdgx_sha256_hex ("video bytes", 11, hex);
    assert (vdgx_jobstore_commit_output (store, "a2", 1, 11, "00", error, sizeof error) == -1);
    assert (access (tmp, F_OK) != 0);
    s_test_write (tmp, "video bytes");
    assert (vdgx_jobstore_commit_output (store, "a2", 1, 12, hex, error, sizeof error) == -1);
    //  Hashed while written: a hash of other bytes than the worker's is refused too.
    s_test_write (tmp, "video bytes");
    assert (vdgx_jobstore_commit_output_hashed (store, "a2", 1, 11, hex, "00", error,
                                                sizeof error) == -1);
    assert (access (tmp, F_OK) != 0 && strstr (error, "sha256"));
    s_test_write (tmp, "video bytes");
    assert (vdgx_jobstore_commit_output (store, "a2", 1, 11, hex, error, sizeof error) == 0);
    vdgx_jobstore_output_path (store, "a2", out, sizeof out);
    assert (access (out, R_OK) == 0 && access (tmp, F_OK) != 0);
    assert (vdgx_jobstore_get (store, "a2", &job) == 0);
    snprintf (job.state, sizeof job.state, "completed");
    snprintf (job.cache_key, sizeof job.cache_key, "ck");
    job.size = 11;
    job.finished_at = 20;
    assert (vdgx_jobstore_update (store, &job) == 0);
    vdgx_jobrec_clear (&job);
    assert (vdgx_jobstore_find_cached (store, "ck", &got) == 0 && streq (got.id, "a2"));
    vdgx_jobrec_clear (&got);
    assert (vdgx_jobstore_share_output (store, "a2", "a1") == 0);
    vdgx_jobstore_output_path (store, "a1", out, sizeof out);
    assert (access (out, R_OK) == 0);
    assert (vdgx_jobstore_add_event (store, "a2", "state", "completed", NULL, 20) == 0);
    assert (vdgx_jobstore_event_count (store, "a2") == 1);
    assert (vdgx_jobstore_model_add (store, "m") == 0);
    assert (vdgx_jobstore_model_add (store, "m") == 0);
    zlist_t *models = vdgx_jobstore_models (store);
    assert (zlist_size (models) == 1);
    zlist_destroy (&models);
    assert (vdgx_jobstore_limits_get (store, "m") == NULL);
    assert (vdgx_jobstore_limits_set (store, "m", "\x80", 1) == 0);
    assert (vdgx_jobstore_limits_set (store, "m", "\x81\xa1x\x01", 4) == 0);     //  replaces
    zframe_t *lim = vdgx_jobstore_limits_get (store, "m");
    assert (lim && zframe_size (lim) == 4 && memcmp (zframe_data (lim), "\x81\xa1x\x01", 4) == 0);
    zframe_destroy (&lim);
    //  An update writes only the columns that changed: every column, each way between
    //  empty and set, reads back as written; a row that is not there stays absent.
    {
        vdgx_jobrec_t want, have;
        assert (vdgx_jobstore_get (store, "a3", &want) == 0);
        for (int round = 0; round < 4; round++) {
            bool set = round % 2 == 0;
            snprintf (want.model, sizeof want.model, "%s", set? "m2": "n");
            snprintf (want.state, sizeof want.state, "%s", set? "running": "failed");
            want.priority = set? 2: 1;
            want.seq = set? 99: 3;
            snprintf (want.idem_key, sizeof want.idem_key, "%s", set? "key-3": "");
            snprintf (want.cache_key, sizeof want.cache_key, "%s", set? "ck3": "");
            free (want.request);
            want.request_size = set? 3: 0;
            want.request = set? (uint8_t *) strdup ("\x81\xa1q"): NULL;
            want.attempt = set? 4: 0;
            want.created_at = set? 1.5: 1;
            want.started_at = set? 2.25: 0;
            want.finished_at = set? 3.125: 10;
            snprintf (want.err_code, sizeof want.err_code, "%s", set? "": "worker_failed");
            snprintf (want.err_msg, sizeof want.err_msg, "%s", set? "": "it broke");
            free (want.result);
            want.result_size = set? 2: 0;
            want.result = set? (uint8_t *) strdup ("\x80\x80"): NULL;
            want.size = set? 7: 0;
            snprintf (want.sha256, sizeof want.sha256, "%s", set? "ab": "");
            want.cached = set;
            snprintf (want.owner, sizeof want.owner, "%s", set? "alice": "");
            assert (vdgx_jobstore_update (store, &want) == 0);
            assert (vdgx_jobstore_get (store, "a3", &have) == 0);
            assert (streq (have.model, want.model) && streq (have.state, want.state)
                    && have.priority == want.priority && have.seq == want.seq
                    && streq (have.idem_key, want.idem_key) && streq (have.cache_key, want.cache_key)
                    && have.request_size == want.request_size
                    && (!want.request_size || memcmp (have.request, want.request, want.request_size) == 0)
                    && have.attempt == want.attempt && have.created_at == want.created_at
                    && have.started_at == want.started_at && have.finished_at == want.finished_at
                    && streq (have.err_code, want.err_code) && streq (have.err_msg, want.err_msg)
                    && have.result_size == want.result_size
                    && (!want.result_size || memcmp (have.result, want.result, want.result_size) == 0)
                    && have.size == want.size && streq (have.sha256, want.sha256)
                    && have.cached == want.cached && streq (have.owner, want.owner));
            vdgx_jobrec_clear (&have);
            //  The same values again: nothing to write, still the same row.
            assert (vdgx_jobstore_update (store, &want) == 0);
        }
        //  Back as inserted (the request the test job had), so the checks below hold.
        free (want.request);
        want.request = (uint8_t *) malloc (4);
        memcpy (want.request, "\x81\xa1k\x01", 4);
        want.request_size = 4;
        assert (vdgx_jobstore_update (store, &want) == 0);
        snprintf (want.id, sizeof want.id, "absent");
        assert (vdgx_jobstore_update (store, &want) == 0);
        assert (vdgx_jobstore_get (store, "absent", &have) == -1);
        vdgx_jobrec_clear (&want);
    }
    uint64_t njobs = 0, bytes = 0;
    assert (vdgx_jobstore_health (store, &njobs, &bytes) == 0 && njobs == 3 && bytes == 11);
    //  Group commit: a batch is one transaction, visible to reads before its COMMIT.
    vdgx_jobstore_begin (store);
    assert (!vdgx_jobstore_pending (store));
    s_test_job (&job, "b1", "m", "queued", 1, vdgx_jobstore_next_seq (store), 0);
    assert (vdgx_jobstore_insert (store, &job) == 0);
    assert (vdgx_jobstore_add_event (store, "b1", "state", "queued", NULL, 21) == 0);
    vdgx_jobrec_clear (&job);
    assert (vdgx_jobstore_pending (store));
    assert (vdgx_jobstore_get (store, "b1", &got) == 0);
    vdgx_jobrec_clear (&got);
    assert (vdgx_jobstore_health (store, &njobs, &bytes) == 0 && njobs == 4);
    assert (vdgx_jobstore_commit (store) == 0 && !vdgx_jobstore_pending (store));
    //  A batch that never commits (the broker killed) leaves nothing behind.
    vdgx_jobstore_begin (store);
    s_test_job (&job, "b2", "m", "queued", 1, vdgx_jobstore_next_seq (store), 0);
    assert (vdgx_jobstore_insert (store, &job) == 0);
    vdgx_jobrec_clear (&job);
    vdgx_jobstore_destroy (&store);
    //  Reopen: committed rows, the counts and the sequence survive.
    store = vdgx_jobstore_new (dir, error, sizeof error);
    assert (store);
    assert (vdgx_jobstore_get (store, "b2", &got) == -1);
    assert (vdgx_jobstore_get (store, "b1", &got) == 0);
    vdgx_jobrec_clear (&got);
    assert (vdgx_jobstore_health (store, &njobs, &bytes) == 0 && njobs == 4 && bytes == 11);
    assert (vdgx_jobstore_next_seq (store) == 5);
    //  Retention: a3 finished at 10, a2 at 20; keep 15 s at now = 30 -> a3 goes.
    assert (vdgx_jobstore_gc (store, 30, 15, 0) == 1);
    assert (vdgx_jobstore_get (store, "a3", &got) == -1);
    //  Size cap below a2's 11 bytes: a2 goes with its output.
    assert (vdgx_jobstore_gc (store, 30, 0, 5) == 1);
    vdgx_jobstore_output_path (store, "a2", out, sizeof out);
    assert (access (out, F_OK) != 0);
    assert (vdgx_jobstore_health (store, &njobs, &bytes) == 0 && njobs == 2 && bytes == 0);
    //  A delete in a batch removes the output only once it is committed.
    vdgx_jobstore_output_path (store, "a1", out, sizeof out);
    vdgx_jobstore_begin (store);
    assert (vdgx_jobstore_delete (store, "a1") == 0);
    assert (access (out, F_OK) == 0);
    assert (vdgx_jobstore_commit (store) == 0);
    assert (access (out, F_OK) != 0);
    assert (vdgx_jobstore_delete (store, "a1") == -1);
    assert (vdgx_jobstore_delete (store, "b1") == 0);
    assert (vdgx_jobstore_health (store, &njobs, &bytes) == 0 && njobs == 0 && bytes == 0);
    //  Deferred sync: a commit hands over what to sync (the output, the folder, the WAL last).
    assert (vdgx_jobstore_defer_sync (store) == 0);
    assert (vdgx_jobstore_take_syncs (store) == NULL);
    vdgx_jobstore_begin (store);
    s_test_job (&job, "c1", "m", "running", 1, vdgx_jobstore_next_seq (store), 0);
    job.attempt = 1;
    assert (vdgx_jobstore_insert (store, &job) == 0);
    vdgx_jobstore_temp_path (store, "c1", 1, tmp, sizeof tmp);
    s_test_write (tmp, "video bytes");
    assert (vdgx_jobstore_commit_output (store, "c1", 1, 11, hex, error, sizeof error) == 0);
    snprintf (job.state, sizeof job.state, "completed");
    job.size = 11;
    assert (vdgx_jobstore_update (store, &job) == 0);
    vdgx_jobrec_clear (&job);
    assert (vdgx_jobstore_commit (store) == 0);
    zlist_t *syncs = vdgx_jobstore_take_syncs (store);
    assert (syncs && zlist_size (syncs) == 3);
    vdgx_jobstore_output_path (store, "c1", out, sizeof out);
    assert (streq ((char *) zlist_first (syncs), out));
    assert (strstr ((char *) zlist_next (syncs), "/out"));
    assert (strstr ((char *) zlist_next (syncs), "jobs.db-wal"));
    zlist_destroy (&syncs);
    assert (vdgx_jobstore_take_syncs (store) == NULL);
    assert (vdgx_jobstore_health (store, &njobs, &bytes) == 0 && njobs == 1 && bytes == 11);
    //  Deferred: a deleted job's output stays until the caller has synced the batch.
    assert (vdgx_jobstore_take_unlinks (store) == NULL);
    vdgx_jobstore_begin (store);
    assert (vdgx_jobstore_delete (store, "c1") == 0);
    assert (vdgx_jobstore_commit (store) == 0);
    assert (access (out, F_OK) == 0);
    zlist_t *unlinks = vdgx_jobstore_take_unlinks (store);
    assert (unlinks && zlist_size (unlinks) == 1 && streq ((char *) zlist_first (unlinks), out));
    zlist_destroy (&unlinks);
    syncs = vdgx_jobstore_take_syncs (store);
    assert (syncs && strstr ((char *) zlist_last (syncs), "jobs.db-wal"));
    zlist_destroy (&syncs);
    unlink (out);
    vdgx_jobstore_flush (store);
    vdgx_jobstore_destroy (&store);
    assert (store == NULL);
    //  A data dir that cannot be created gives an error, not a crash.
    assert (vdgx_jobstore_new ("/proc/vdgx-no", error, sizeof error) == NULL);
    if (verbose)
        printf ("(%s) ", error);
    zsys_dir_delete ("%s/out", dir);
    zsys_dir_delete ("%s/tmp", dir);
    char path [4096];
    const char *files [] = { "jobs.db", "jobs.db-wal", "jobs.db-shm" };
    for (int i = 0; i < 3; i++) {
        snprintf (path, sizeof path, "%s/%s", dir, files [i]);
        unlink (path);
    }
    rmdir (dir);
    printf ("OK\n");
}
