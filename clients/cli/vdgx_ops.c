/*  vdgx_ops.c - operator commands that work on the broker host's files: `vdgx backup` (an
    online copy of the job store) and `vdgx logs` (the stack's logs). */
#include "vdgx_cli.h"
#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  The SQLite online backup API: pages are copied in steps while the broker keeps writing
//  (WAL mode lets the reader go on); a step that sees a change made meanwhile starts over,
//  so the copy is one consistent state of the store. 0, or -1 with a message printed.
static int
s_backup (const char *dbpath, const char *dest)
{
    sqlite3 *src = NULL, *dst = NULL;
    int rc = -1;
    if (sqlite3_open_v2 (dbpath, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf (stderr, "vdgx backup: cannot open %s: %s\n", dbpath, src? sqlite3_errmsg (src): "no memory");
        goto done;
    }
    sqlite3_busy_timeout (src, 5000);
    if (sqlite3_open_v2 (dest, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        fprintf (stderr, "vdgx backup: cannot create %s: %s\n", dest, dst? sqlite3_errmsg (dst): "no memory");
        goto done;
    }
    sqlite3_backup *b = sqlite3_backup_init (dst, "main", src, "main");
    if (!b) {
        fprintf (stderr, "vdgx backup: %s\n", sqlite3_errmsg (dst));
        goto done;
    }
    int step;
    while ((step = sqlite3_backup_step (b, 256)) == SQLITE_OK || step == SQLITE_BUSY
       ||  step == SQLITE_LOCKED)
        if (step != SQLITE_OK)
            sqlite3_sleep (20);
    sqlite3_backup_finish (b);
    if (step != SQLITE_DONE) {
        fprintf (stderr, "vdgx backup: %s\n", sqlite3_errstr (step));
        goto done;
    }
    //  One self-contained file (no -wal beside it), checked before we call it a backup.
    sqlite3_stmt *st = NULL;
    char *msg = NULL;
    if (sqlite3_exec (dst, "PRAGMA journal_mode=DELETE", NULL, NULL, &msg) != SQLITE_OK
    ||  sqlite3_prepare_v2 (dst, "PRAGMA quick_check(1)", -1, &st, NULL) != SQLITE_OK
    ||  sqlite3_step (st) != SQLITE_ROW
    ||  strcmp ((const char *) sqlite3_column_text (st, 0), "ok") != 0) {
        fprintf (stderr, "vdgx backup: the copy does not check: %s\n", msg? msg: sqlite3_errmsg (dst));
        sqlite3_free (msg);
        sqlite3_finalize (st);
        goto done;
    }
    sqlite3_finalize (st);
    rc = 0;
done:
    if (dst)
        sqlite3_close (dst);
    if (src)
        sqlite3_close (src);
    if (rc)
        unlink (dest);
    return rc;
}

int
vdgx_cli_backup (vdgx_cli_t *cli, int argc, char **argv)
{
    static struct option longopts [] = {
        { "data", required_argument, NULL, 'D' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *data_flag = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long (argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'D')
            data_flag = optarg;
        else
        if (c == 'h') {
            printf ("usage: vdgx backup [--data DIR] FILE\n"
                    "An online copy of the job store DIR/jobs.db into FILE (SQLite's backup API),\n"
                    "safe while the broker runs. Outputs are plain files: copy DIR/out/ as well.\n"
                    "Restore: stop the broker, copy FILE to DIR/jobs.db, remove DIR/jobs.db-wal and\n"
                    "DIR/jobs.db-shm, start the broker (README.md, Operations).\n");
            return 0;
        }
        else {
            fprintf (stderr, "vdgx backup: bad option (try vdgx backup --help)\n");
            return VDGX_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf (stderr, "vdgx backup: expected one FILE (try vdgx backup --help)\n");
        return VDGX_EXIT_USAGE;
    }
    const char *dest = argv [optind];
    if (access (dest, F_OK) == 0) {
        fprintf (stderr, "vdgx backup: %s exists; not overwritten\n", dest);
        return VDGX_EXIT_IO;
    }
    char data [PATH_MAX], dbpath [PATH_MAX + 16];
    if (vdgx_cli_data_dir (cli, data_flag, data, sizeof data))
        return VDGX_EXIT_USAGE;
    snprintf (dbpath, sizeof dbpath, "%s/jobs.db", data);
    if (access (dbpath, R_OK)) {
        fprintf (stderr, "vdgx backup: no job store at %s (--data DIR?)\n", dbpath);
        return VDGX_EXIT_NOT_FOUND;
    }
    if (s_backup (dbpath, dest))
        return VDGX_EXIT_IO;
    struct stat sb;
    stat (dest, &sb);
    printf ("backed up %s to %s (%lld bytes)\n", dbpath, dest, (long long) sb.st_size);
    return 0;
}

int
vdgx_cli_logs (vdgx_cli_t *cli, int argc, char **argv)
{
    static struct option longopts [] = {
        { "data", required_argument, NULL, 'D' }, { "lines", required_argument, NULL, 'n' },
        { "no-follow", no_argument, NULL, 'N' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *data_flag = NULL;
    unsigned long lines = 100;
    bool follow = true;
    int c;
    optind = 0;
    while ((c = getopt_long (argc, argv, "hn:", longopts, NULL)) != -1) {
        if (c == 'D')
            data_flag = optarg;
        else
        if (c == 'n') {
            if (vdgx_cli_parse_uint ("logs", "--lines", optarg, 0, 1000000, &lines))
                return VDGX_EXIT_USAGE;
        }
        else
        if (c == 'N')
            follow = false;
        else
        if (c == 'h') {
            printf ("usage: vdgx logs [--data DIR] [-n N] [--no-follow]\n"
                    "The last N lines (default 100) of every log `vdgx up` writes (DIR/logs/*.log,\n"
                    "DIR as for vdgx up: --data, [general] data_dir, VDGX_DATA_DIR, ./var), then\n"
                    "follows them.\n");
            return 0;
        }
        else {
            fprintf (stderr, "vdgx logs: bad option (try vdgx logs --help)\n");
            return VDGX_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf (stderr, "vdgx logs: unexpected argument '%s'\n", argv [optind]);
        return VDGX_EXIT_USAGE;
    }
    char data [PATH_MAX], pattern [PATH_MAX + 16];
    if (vdgx_cli_data_dir (cli, data_flag, data, sizeof data))
        return VDGX_EXIT_USAGE;
    snprintf (pattern, sizeof pattern, "%s/logs/*.log", data);
    glob_t g;
    if (glob (pattern, 0, NULL, &g) != 0 || g.gl_pathc == 0) {
        fprintf (stderr, "vdgx logs: no logs in %s/logs: is the stack started with vdgx up"
                 " (with this --data or config)?\n", data);
        return VDGX_EXIT_NOT_FOUND;
    }
    char n [32];
    snprintf (n, sizeof n, "%lu", lines);
    char **args = (char **) calloc (g.gl_pathc + 5, sizeof (char *));
    size_t k = 0;
    args [k++] = (char *) "tail";
    args [k++] = (char *) "-n";
    args [k++] = n;
    if (follow)
        args [k++] = (char *) "-F";
    for (size_t i = 0; i < g.gl_pathc; i++)
        args [k++] = g.gl_pathv [i];
    fflush (stdout);
    execvp ("tail", args);
    fprintf (stderr, "vdgx logs: cannot run tail: %s\n", strerror (errno));
    free (args);
    globfree (&g);
    return VDGX_EXIT_IO;
}
