/*  vdgx_ui.h - the web UI's files, compiled into vdgx-bridge, and how they are served.

    The files under clients/bridge/ui are plain HTML, CSS and JavaScript (no build step);
    embed_ui.cmake turns them into the table vdgx_ui_assets [] at build time. The bridge
    serves them at /ui/ and, to browsers (Accept: text/html), at /; API clients keep the JSON
    index at /. Every UI response carries a strict Content-Security-Policy: the page may load
    and talk to this origin only.
*/
#ifndef VDGX_UI_H_INCLUDED
#define VDGX_UI_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *path;               //  under /ui/, e.g. "app.js"; NULL ends the table
    const char *type;               //  Content-Type
    const unsigned char *data;      //  the file's bytes (NUL-terminated, NUL not counted)
    size_t size;
} vdgx_ui_asset_t;

//  The generated table (vdgx_ui_assets.c), ended by an entry with path NULL.
extern const vdgx_ui_asset_t vdgx_ui_assets [];

//  The asset a URL path names: "/ui", "/ui/" and "/" give index.html, "/ui/NAME" gives NAME.
//  NULL when there is no such file.
const vdgx_ui_asset_t *vdgx_ui_find (const char *url);

//  True when an Accept header value prefers HTML to JSON (a browser navigating), false for
//  NULL, "*/*", "application/json" and the like.
bool vdgx_ui_wants_html (const char *accept);

//  The Content-Security-Policy every UI response carries.
const char *vdgx_ui_csp (void);

void vdgx_ui_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
