/*  vdgx_ui.c - finds the web UI's compiled-in files and says when a request wants HTML. */
#include "vdgx_ui.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  Same origin only: scripts, styles, fetch/SSE, images and video from this bridge (blob:
//  for media fetched with an API key), no inline code, no frames, no plugins, no forms to
//  elsewhere.
static const char s_csp [] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "media-src 'self' blob:; connect-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";

const char *
vdgx_ui_csp (void)
{
    return s_csp;
}

const vdgx_ui_asset_t *
vdgx_ui_find (const char *url)
{
    assert (url);
    const char *name;
    if (strcmp (url, "/") == 0 || strcmp (url, "/ui") == 0 || strcmp (url, "/ui/") == 0)
        name = "index.html";
    else
    if (strncmp (url, "/ui/", 4) == 0)
        name = url + 4;
    else
        return NULL;
    for (const vdgx_ui_asset_t *a = vdgx_ui_assets; a->path; a++)
        if (strcmp (a->path, name) == 0)
            return a;
    return NULL;
}

//  The q of one Accept element ("text/html;level=1;q=0.8" -> 0.8), 1 when absent.
static double
s_quality (const char *params, size_t n)
{
    for (const char *p = params; p < params + n; p++)
        if (*p == ';') {
            const char *q = p + 1;
            while (q < params + n && *q == ' ')
                q++;
            if (q + 1 < params + n && (q [0] == 'q' || q [0] == 'Q') && q [1] == '=')
                return strtod (q + 2, NULL);
        }
    return 1;
}

bool
vdgx_ui_wants_html (const char *accept)
{
    if (!accept)
        return false;
    double html = 0, json = 0;
    const char *p = accept;
    while (*p) {
        size_t n = strcspn (p, ",");
        const char *type = p, *end = p + n;
        while (type < end && *type == ' ')
            type++;
        size_t tn = strcspn (type, ";, ");
        if (tn > (size_t) (end - type))
            tn = (size_t) (end - type);
        double q = s_quality (type + tn, (size_t) (end - type) - tn);
        if ((tn == 9 && strncasecmp (type, "text/html", 9) == 0)
        ||  (tn == 21 && strncasecmp (type, "application/xhtml+xml", 21) == 0))
            html = q > html? q: html;
        else
        if (tn == 16 && strncasecmp (type, "application/json", 16) == 0)
            json = q > json? q: json;
        p += n;
        if (*p == ',')
            p++;
    }
    return html > 0 && html >= json;
}

void
vdgx_ui_test (bool verbose)
{
    printf (" * vdgx_ui: ");
    //  The table holds the page and what it loads, each with a type.
    const vdgx_ui_asset_t *index = vdgx_ui_find ("/ui/");
    assert (index && strcmp (index->path, "index.html") == 0);
    assert (strncmp (index->type, "text/html", 9) == 0);
    assert (index->size > 100 && strlen ((const char *) index->data) == index->size);
    assert (vdgx_ui_find ("/") == index && vdgx_ui_find ("/ui") == index);
    assert (strstr ((const char *) index->data, "/ui/app.js"));
    assert (strstr ((const char *) index->data, "/ui/style.css"));
    const vdgx_ui_asset_t *js = vdgx_ui_find ("/ui/app.js");
    assert (js && strncmp (js->type, "text/javascript", 15) == 0);
    assert (vdgx_ui_find ("/ui/style.css"));
    //  No inline script or style (the policy would refuse them) and no other host.
    for (const vdgx_ui_asset_t *a = vdgx_ui_assets; a->path; a++) {
        if (verbose)
            printf ("\n   %s %zu bytes %s", a->path, a->size, a->type);
        const char *text = (const char *) a->data;
        for (const char *h = strstr (text, "http"); h; h = strstr (h + 4, "http"))
            assert (strncmp (h, "http://www.w3.org/2000/svg\"", 27) == 0
                    || (h [4] != ':' && h [4] != 's'));
        if (strncmp (a->type, "text/html", 9) == 0) {
            assert (!strstr (text, "<script>") && !strstr (text, "style=\"") && !strstr (text, "<style"));
            assert (!strstr (text, "onclick="));
        }
    }
    //  Unknown names, traversal and other prefixes find nothing.
    assert (!vdgx_ui_find ("/ui/nope.js"));
    assert (!vdgx_ui_find ("/ui/../openapi.json"));
    assert (!vdgx_ui_find ("/ui//app.js"));
    assert (!vdgx_ui_find ("/uix/app.js"));
    assert (!vdgx_ui_find ("/app.js"));
    assert (!vdgx_ui_find (""));
    //  Content negotiation: browsers get HTML, API clients (curl, SDKs) JSON.
    assert (vdgx_ui_wants_html ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
    assert (vdgx_ui_wants_html ("application/xhtml+xml"));
    assert (vdgx_ui_wants_html ("TEXT/HTML"));
    assert (vdgx_ui_wants_html ("application/json;q=0.5, text/html"));
    assert (!vdgx_ui_wants_html (NULL));
    assert (!vdgx_ui_wants_html (""));
    assert (!vdgx_ui_wants_html ("*/*"));
    assert (!vdgx_ui_wants_html ("application/json"));
    assert (!vdgx_ui_wants_html ("application/json, text/html;q=0.5"));
    assert (!vdgx_ui_wants_html ("text/html;q=0"));
    assert (!vdgx_ui_wants_html ("text/htmlx"));
    assert (!vdgx_ui_wants_html (";;,, ,;q=1"));
    assert (!vdgx_ui_wants_html ("text/html;q=abc"));     //  an unreadable q reads as 0
    //  The policy allows nothing from elsewhere and no inline code.
    assert (strstr (vdgx_ui_csp (), "default-src 'none'"));
    assert (!strstr (vdgx_ui_csp (), "unsafe"));
    assert (!strstr (vdgx_ui_csp (), "*"));
    printf ("OK\n");
}
