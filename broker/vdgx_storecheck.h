/*  vdgx_storecheck.h - the job store's integrity check at start, and its salvage.

    Before the broker opens DIR/jobs.db it runs PRAGMA quick_check. A damaged file (a page
    scribbled over, a bad sector, a copy cut short) is not opened: the broker refuses to
    start and says how to salvage. Salvage moves the damaged file aside as
    DIR/jobs.db.damaged-<unix time> (with its -wal), makes a fresh jobs.db and copies into
    it, row by row, every row SQLite can still read; the rows it cannot read stay in the
    file moved aside, and the report says how many there were.
*/
#ifndef VDGX_STORECHECK_H_INCLUDED
#define VDGX_STORECHECK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Checks DIR/jobs.db (a missing file is fine: a new store). 0 when it is sound, or when it
//  was damaged and salvage was asked for and done (report says what happened; "" when
//  there was nothing to do). -1 with the reason in error: damaged and no salvage, or the
//  salvage itself failed.
int vdgx_storecheck_run (const char *dir, bool salvage, char *report, size_t reportsize,
                         char *error, size_t errsize);

//  Removes a data directory made by a test: the store with its WAL, out/, tmp/ and damaged
//  copies, then the directory (a selftest helper: tests clean up after themselves).
void vdgx_storecheck_remove (const char *dir);

void vdgx_storecheck_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
