/*  vdgx_progressbar.h - job progress for people: a one-line bar redrawn in place on a TTY
    ("[#######.......]  47%  denoising 14/30  00:12 ETA 00:14"), plain lines otherwise
    ("progress: id=.. state=running phase=denoising step=14/30 percent=47.0 elapsed=12.1s
    eta=14s"), one per change of phase or step so logs stay short.

    ETA: the time since the job started running, scaled by (100 - percent) / percent; none
    before the job has made any progress.
*/
#ifndef VDGX_PROGRESSBAR_H_INCLUDED
#define VDGX_PROGRESSBAR_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "vdgx_msg.h"

typedef struct _vdgx_progressbar_t vdgx_progressbar_t;

//  out: where to draw (stderr for the CLI); tty: redraw one line (else plain lines).
vdgx_progressbar_t *vdgx_progressbar_new (FILE *out, bool tty);
void vdgx_progressbar_destroy (vdgx_progressbar_t **self_p);
//  Shows the job's state; now_ms is a monotonic clock in ms.
void vdgx_progressbar_update (vdgx_progressbar_t *self, const vdgx_jobstatus_t *job, int64_t now_ms);
//  Ends the bar's line (TTY) so later output starts on a fresh line.
void vdgx_progressbar_finish (vdgx_progressbar_t *self);
//  The text of the current line (what update drew last), for tests; "" before any update.
const char *vdgx_progressbar_line (vdgx_progressbar_t *self);
//  Seconds left, or -1 when unknown.
double vdgx_progressbar_eta (vdgx_progressbar_t *self, int64_t now_ms);

void vdgx_progressbar_test (bool verbose);

#endif
