/*  vdgx_tmpsweep.h - removes what killed workers left in a data folder.

    A worker writes its result as DIR/<id>.<pid>.mp4 (kept until the broker acknowledges it)
    and the encoder's temporary DIR/.<id>.<pid>.mp4.tmp-XXXXXX. A worker that is killed
    leaves both, and no later process knows them. At start a worker removes every such file
    whose <pid> is not a running process (the folder may be shared: other live workers'
    files stay).
*/
#ifndef VDGX_TMPSWEEP_H_INCLUDED
#define VDGX_TMPSWEEP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Removes the leftovers of dead workers in dir. Returns how many files it removed.
size_t vdgx_tmpsweep_run (const char *dir);

void vdgx_tmpsweep_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
