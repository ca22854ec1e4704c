/*  vdgx_thumb.h - a JPEG thumbnail of a video held in memory (GET /v1/videos/{id}/content
    ?variant=thumbnail). The worker writes MP4s with the index first (+faststart), so the
    first chunk of a video (the bridge reads up to 4 MiB) holds the index and the first frames:
    the thumbnail is made without the whole file. Input is untrusted bytes from the store:
    any failure is an error, never a crash.
*/
#ifndef VDGX_THUMB_H_INCLUDED
#define VDGX_THUMB_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Decodes the first video frame of data and encodes it as JPEG, scaled down to at most
//  max_width pixels wide (aspect kept). Returns 0 with *jpeg_p (malloc'ed, caller frees) and
//  *jpeg_size, or -1 with a message in err.
int vdgx_thumb_jpeg (const uint8_t *data, size_t size, int max_width, uint8_t **jpeg_p,
                     size_t *jpeg_size, char *err, size_t err_size);

void vdgx_thumb_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
