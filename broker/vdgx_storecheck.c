/*  vdgx_storecheck.c - integrity check and salvage of the job store (see the header).
*/
#include "vdgx_storecheck.h"
#include "vdgx_jobstore.h"
#include "vdgx_log.h"
#include <assert.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_TABLES_MAX 32
//  When even the largest row id cannot be read, row ids up to this are tried.
#define S_ROWID_GUESS 200000

//  quick_check's first line ("ok" when sound) into result. 0 when it ran.
static int
s_quick_check (const char *path, char *result, size_t size)
{
    sqlite3 *db = NULL;
    int rc = -1;
    snprintf (result, size, "cannot be opened");
    if (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        snprintf (result, size, "%s", db? sqlite3_errmsg (db): "cannot be opened");
        goto done;
    }
    sqlite3_busy_timeout (db, 5000);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2 (db, "PRAGMA quick_check(1)", -1, &st, NULL) != SQLITE_OK) {
        snprintf (result, size, "%s", sqlite3_errmsg (db));
        goto done;
    }
    int step = sqlite3_step (st);
    if (step == SQLITE_ROW) {
        const unsigned char *text = sqlite3_column_text (st, 0);
        snprintf (result, size, "%s", text? (const char *) text: "?");
        rc = 0;
    }
    else
        snprintf (result, size, "%s", sqlite3_errmsg (db));
    sqlite3_finalize (st);
done:
    if (db)
        sqlite3_close (db);
    return rc;
}

//  Copies every readable row of table from old.table into main.table, probing row ids one
//  by one (a damaged page fails only the lookups that go through it). Adds to the counts.
//  The columns table has in both schemas, comma-separated (an older file may lack columns
//  the current schema added). "" when none can be read.
static void
s_common_columns (sqlite3 *db, const char *table, char *out, size_t size)
{
    out [0] = 0;
    char sql [128];
    snprintf (sql, sizeof sql, "PRAGMA main.table_info(%.63s)", table);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2 (db, sql, -1, &st, NULL) != SQLITE_OK)
        return;
    size_t len = 0;
    while (sqlite3_step (st) == SQLITE_ROW) {
        const char *col = (const char *) sqlite3_column_text (st, 1);
        sqlite3_stmt *chk = NULL;
        char *q = sqlite3_mprintf ("SELECT 1 FROM pragma_table_info(%Q, 'old') WHERE name = %Q",
                                   table, col);
        bool both = sqlite3_prepare_v2 (db, q, -1, &chk, NULL) == SQLITE_OK
                 && sqlite3_step (chk) == SQLITE_ROW;
        sqlite3_finalize (chk);
        sqlite3_free (q);
        if (both && len + strlen (col) + 2 < size)
            len += (size_t) snprintf (out + len, size - len, "%s%s", len? ", ": "", col);
    }
    sqlite3_finalize (st);
}

static void
s_copy_table (sqlite3 *db, const char *table, size_t *copied, size_t *unreadable)
{
    char sql [2048], cols [768];
    sqlite3_stmt *st = NULL;
    s_common_columns (db, table, cols, sizeof cols);
    if (!*cols)
        return;                 //  not in the old file (or its schema cannot be read)
    int64_t max = -1;
    snprintf (sql, sizeof sql, "SELECT max(rowid) FROM old.%.63s", table);
    if (sqlite3_prepare_v2 (db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step (st) == SQLITE_ROW)
        max = sqlite3_column_int64 (st, 0);
    sqlite3_finalize (st);
    if (max < 0)
        max = S_ROWID_GUESS;
    snprintf (sql, sizeof sql, "INSERT OR IGNORE INTO main.%.63s (%s) SELECT %s FROM old.%.63s WHERE rowid = ?1",
              table, cols, cols, table);
    if (sqlite3_prepare_v2 (db, sql, -1, &st, NULL) != SQLITE_OK) {
        vdgx_log_warn ("store.salvage", "table=%s error=\"%s\"", table, sqlite3_errmsg (db));
        return;
    }
    for (int64_t id = 1; id <= max; id++) {
        sqlite3_bind_int64 (st, 1, id);
        int rc = sqlite3_step (st);
        if (rc == SQLITE_DONE)
            *copied += (size_t) sqlite3_changes (db);
        else
            (*unreadable)++;
        sqlite3_reset (st);
    }
    sqlite3_finalize (st);
}

static int
s_salvage (const char *dir, const char *dbpath, const char *why, char *report, size_t reportsize,
           char *error, size_t errsize)
{
    char aside [4096], from [4200], to [4200];
    snprintf (aside, sizeof aside, "%s/jobs.db.damaged-%lld", dir, (long long) time (NULL));
    //  The file and its WAL move together (SQLite finds "<name>-wal" next to "<name>").
    const char *suffixes [] = { "", "-wal" };
    for (int i = 0; i < 2; i++) {
        snprintf (from, sizeof from, "%s%s", dbpath, suffixes [i]);
        snprintf (to, sizeof to, "%s%s", aside, suffixes [i]);
        if (rename (from, to) && errno != ENOENT) {
            snprintf (error, errsize, "salvage: cannot move %s aside: %s", from, strerror (errno));
            return -1;
        }
    }
    snprintf (from, sizeof from, "%s-shm", dbpath);
    unlink (from);
    //  A fresh store with the schema, then the rows that can be read.
    vdgx_jobstore_t *fresh = vdgx_jobstore_new (dir, error, errsize);
    if (!fresh)
        return -1;
    vdgx_jobstore_destroy (&fresh);
    sqlite3 *db = NULL;
    int rc = -1;
    if (sqlite3_open_v2 (dbpath, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        snprintf (error, errsize, "salvage: cannot open %s", dbpath);
        goto done;
    }
    char *sql = sqlite3_mprintf ("ATTACH DATABASE %Q AS old", aside);
    char *msg = NULL;
    int arc = sqlite3_exec (db, sql, NULL, NULL, &msg);
    sqlite3_free (sql);
    if (arc != SQLITE_OK) {
        snprintf (error, errsize, "salvage: cannot read %s: %s", aside, msg? msg: "?");
        sqlite3_free (msg);
        goto done;
    }
    //  One statement per row id, each its own transaction: an error reading a damaged
    //  page would roll back a transaction around them all. Synced once at the end.
    //  Every table of the current schema (jobs first: the report counts them).
    size_t copied [S_TABLES_MAX] = { 0 }, unreadable [S_TABLES_MAX] = { 0 }, ntables = 0;
    char tables [S_TABLES_MAX][64];
    sqlite3_stmt *ts = NULL;
    if (sqlite3_prepare_v2 (db, "SELECT name FROM main.sqlite_master WHERE type = 'table'"
                            " AND name NOT LIKE 'sqlite_%' ORDER BY name <> 'jobs', name <> 'events', name",
                            -1, &ts, NULL) == SQLITE_OK)
        while (sqlite3_step (ts) == SQLITE_ROW && ntables < S_TABLES_MAX)
            snprintf (tables [ntables++], sizeof tables [0], "%s", sqlite3_column_text (ts, 0));
    sqlite3_finalize (ts);
    sqlite3_exec (db, "PRAGMA main.synchronous=OFF", NULL, NULL, NULL);
    for (size_t t = 0; t < ntables; t++)
        s_copy_table (db, tables [t], &copied [t], &unreadable [t]);
    if (sqlite3_exec (db, "PRAGMA main.synchronous=FULL; PRAGMA main.wal_checkpoint(TRUNCATE)",
                      NULL, NULL, &msg) != SQLITE_OK) {
        snprintf (error, errsize, "salvage: cannot write %s: %s", dbpath, msg? msg: "?");
        sqlite3_free (msg);
        goto done;
    }
    sqlite3_exec (db, "DETACH DATABASE old", NULL, NULL, NULL);
    size_t lost = 0;
    for (size_t t = 0; t < ntables; t++)
        lost += unreadable [t];
    snprintf (report, reportsize, "salvage: jobs.db was damaged (%s); %zu jobs and %zu events"
              " copied into a new jobs.db; %zu unreadable rows (%zu of them jobs) moved aside"
              " in %s", why, copied [0], copied [1], lost, unreadable [0], aside);
    rc = 0;
done:
    if (db)
        sqlite3_close (db);
    return rc;
}

int
vdgx_storecheck_run (const char *dir, bool salvage, char *report, size_t reportsize,
                     char *error, size_t errsize)
{
    assert (dir && report && error);
    report [0] = 0;
    char dbpath [4096];
    snprintf (dbpath, sizeof dbpath, "%s/jobs.db", dir);
    struct stat sb;
    if (stat (dbpath, &sb) || sb.st_size == 0)
        return 0;               //  no store yet
    char result [512];
    if (s_quick_check (dbpath, result, sizeof result) == 0 && streq (result, "ok"))
        return 0;
    for (char *c = result; *c; c++)
        if (*c == '\n')
            *c = ' ';
    vdgx_log_error ("store.damaged", "path=%s quick_check=\"%s\"", dbpath, result);
    if (!salvage) {
        snprintf (error, errsize, "the job store %s is damaged (quick_check: %s); not started."
                  " Restore a backup (vdgx backup), or start once with --salvage to keep every"
                  " readable row and move the rest aside", dbpath, result);
        return -1;
    }
    return s_salvage (dir, dbpath, result, report, reportsize, error, errsize);
}

void
vdgx_storecheck_remove (const char *dir)
{
    assert (dir);
    zdir_t *d = zdir_new (dir, NULL);
    zfile_t **files = d? zdir_flatten (d): NULL;
    for (size_t i = 0; files && files [i]; i++)
        unlink (zfile_filename (files [i], NULL));
    zdir_flatten_free (&files);
    zdir_destroy (&d);
    char path [4096];
    snprintf (path, sizeof path, "%s/out", dir);
    rmdir (path);
    snprintf (path, sizeof path, "%s/tmp", dir);
    rmdir (path);
    rmdir (dir);
}

//  ---------------------------------------------------------------------------------------
//  Selftest: a real store with rows, a page of its table scribbled over.

void
vdgx_storecheck_test (bool verbose)
{
    printf (" * vdgx_storecheck: ");
    char dir [] = "/tmp/vdgx-storecheck-XXXXXX";
    assert (mkdtemp (dir));
    char error [1024], report [1024], path [4096];
    //  No store yet: fine, nothing reported.
    assert (vdgx_storecheck_run (dir, false, report, sizeof report, error, sizeof error) == 0);
    assert (report [0] == 0);
    vdgx_jobstore_t *store = vdgx_jobstore_new (dir, error, sizeof error);
    assert (store);
    char blob [600];
    memset (blob, 'r', sizeof blob);
    for (int i = 0; i < 200; i++) {
        vdgx_jobrec_t job;
        memset (&job, 0, sizeof job);
        snprintf (job.id, sizeof job.id, "job%04d", i);
        snprintf (job.model, sizeof job.model, "m");
        snprintf (job.state, sizeof job.state, "completed");
        job.request = (uint8_t *) blob;
        job.request_size = sizeof blob;
        job.seq = i;
        assert (vdgx_jobstore_insert (store, &job) == 0);
    }
    vdgx_jobstore_flush (store);
    vdgx_jobstore_destroy (&store);
    //  Sound: 0.
    assert (vdgx_storecheck_run (dir, false, report, sizeof report, error, sizeof error) == 0);
    //  A leaf page in the middle of the table scribbled over.
    snprintf (path, sizeof path, "%s/jobs.db", dir);
    struct stat sb;
    assert (stat (path, &sb) == 0);
    FILE *f = fopen (path, "r+b");
    assert (f);
    long pages = (long) (sb.st_size / 4096);
    assert (pages > 10);
    fseek (f, (pages / 2) * 4096, SEEK_SET);
    for (int i = 0; i < 4096; i++)
        fputc ((i * 7919 + 13) & 0xff, f);
    fclose (f);
    //  Refused without salvage, with a message that says what to do.
    assert (vdgx_storecheck_run (dir, false, report, sizeof report, error, sizeof error) == -1);
    assert (strstr (error, "damaged") && strstr (error, "--salvage"));
    //  Salvaged: most rows kept, some moved aside, the new file sound.
    int rc = vdgx_storecheck_run (dir, true, report, sizeof report, error, sizeof error);
    if (rc)
        fprintf (stderr, "%s\n", error);
    assert (rc == 0);
    if (verbose)
        printf ("(%s) ", report);
    assert (strstr (report, "moved aside"));
    assert (vdgx_storecheck_run (dir, false, report, sizeof report, error, sizeof error) == 0);
    store = vdgx_jobstore_new (dir, error, sizeof error);
    assert (store);
    uint64_t jobs = 0;
    assert (vdgx_jobstore_health (store, &jobs, NULL) == 0);
    assert (jobs > 100 && jobs <= 200);
    vdgx_jobstore_destroy (&store);
    //  Clean up, the damaged copy included.
    vdgx_storecheck_remove (dir);
    assert (access (dir, F_OK) != 0);
    printf ("OK\n");
}
