/*  vdgx_image.h - a still image (PNG, JPEG or WebP) from untrusted bytes in memory, decoded
    with libavcodec and converted with libswscale to packed RGB8 ([height][width][3]).

    Used for the image-to-video inputs (`image`, `last_image` of a generate request): the
    bridge and the CLI decode an upload before it is queued, the worker decodes it for the
    engine. Input is hostile: everything is checked and every failure is a one-line error.

    Before any pixel is decoded, vdgx_image_probe() walks the file's structure:
        PNG   signature, chunks up to IEND (length within the data), IHDR first;
        JPEG  SOI, marker segments and scans up to EOI, the size from the SOFn segment;
        WebP  RIFF/WEBP header with a RIFF size within the data, the size from the VP8, VP8L
              or VP8X chunk (animated WebP is refused: libavcodec has no decoder for it).
    so an empty, truncated, corrupt or unsupported file and a decompression bomb (a small file
    that declares a huge canvas) are refused by their header. The decoder then runs with
    max_pixels and strict error recognition (AV_EF_EXPLODE | AV_EF_CRCCHECK), and the decoded
    size must equal the declared one. Alpha is dropped (as PIL's convert("RGB") does); EXIF
    orientation is not applied (nor does PIL's Image.open).

    Why no libavformat: a still image is one packet; the image decoders parse their own
    container (PNG chunks, JPEG markers, WebP RIFF), so a demuxer would add probing and
    attack surface and nothing else.

    Limits: a NULL limits pointer, or a zero member, means the default below.

        char err [256];
        vdgx_image_t *img = vdgx_image_decode (data, size, NULL, err, sizeof err);
        if (!img) { printf ("image: %s\n", err); return -1; }
        use (vdgx_image_pixels (img), vdgx_image_width (img), vdgx_image_height (img));
        vdgx_image_destroy (&img);
*/
#ifndef VDGX_IMAGE_H_INCLUDED
#define VDGX_IMAGE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Defaults (PROTOCOL.md 5.1, SECURITY.md): 4 MiB of encoded bytes, 4096 pixels a side,
//  16 Mpx (a 4096x4096 RGB8 image is 48 MiB decoded).
#define VDGX_IMAGE_BYTES_MAX    (4 * 1024 * 1024)
#define VDGX_IMAGE_SIDE_MAX     4096
#define VDGX_IMAGE_PIXELS_MAX   (4096ull * 4096ull)

typedef struct {
    size_t max_bytes;           //  0 = VDGX_IMAGE_BYTES_MAX
    uint32_t max_width;         //  0 = VDGX_IMAGE_SIDE_MAX
    uint32_t max_height;        //  0 = VDGX_IMAGE_SIDE_MAX
    uint64_t max_pixels;        //  0 = VDGX_IMAGE_PIXELS_MAX
} vdgx_image_limits_t;

typedef struct _vdgx_image_t vdgx_image_t;

//  Checks the header and structure only (no pixel decoding): 0 with the format ("png",
//  "jpeg", "webp", static) and the declared size, or -1 with a one-line error.
int vdgx_image_probe (const void *data, size_t size, const vdgx_image_limits_t *limits,
                      const char **format_p, uint32_t *width_p, uint32_t *height_p,
                      char *err, size_t errlen);

//  Decodes into packed RGB8. Returns the image, or NULL with a one-line error in err.
vdgx_image_t *vdgx_image_decode (const void *data, size_t size,
                                 const vdgx_image_limits_t *limits, char *err, size_t errlen);
void vdgx_image_destroy (vdgx_image_t **self_p);

uint32_t vdgx_image_width (const vdgx_image_t *self);
uint32_t vdgx_image_height (const vdgx_image_t *self);
const char *vdgx_image_format (const vdgx_image_t *self);       //  "png" | "jpeg" | "webp"
//  width * height * 3 bytes, rows packed (stride width * 3), owned by the image.
const uint8_t *vdgx_image_pixels (const vdgx_image_t *self);

void vdgx_image_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
