/*  vdgx_apikeys.c - API keys: sha256 hashes from a file, constant-time checks. */
#include "vdgx_apikeys.h"
#include "vdgx_sha256.h"
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    uint8_t hash [VDGX_SHA256_SIZE];
    char name [VDGX_APIKEY_NAME_MAX + 1];
    bool admin;                 //  role=admin (default: user)
} s_key_t;

struct _vdgx_apikeys_t {
    s_key_t *keys;
    size_t count, alloc;
    char error [256];
};

vdgx_apikeys_t *
vdgx_apikeys_new (void)
{
    return (vdgx_apikeys_t *) calloc (1, sizeof (vdgx_apikeys_t));
}

void
vdgx_apikeys_destroy (vdgx_apikeys_t **self_p)
{
    assert (self_p);
    vdgx_apikeys_t *self = *self_p;
    if (self) {
        //  Hashes are not secrets, but there is no reason to leave them in freed memory.
        if (self->keys)
            memset (self->keys, 0, self->alloc * sizeof (s_key_t));
        free (self->keys);
        free (self);
        *self_p = NULL;
    }
}

static int
s_hexval (int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int
vdgx_apikeys_add_line (vdgx_apikeys_t *self, const char *line, const char *origin, int lineno)
{
    assert (self && line);
    const char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    s_key_t key;
    memset (&key, 0, sizeof key);
    for (int i = 0; i < VDGX_SHA256_SIZE; i++) {
        int hi = s_hexval ((unsigned char) p [2 * i]);
        int lo = hi < 0? -1: s_hexval ((unsigned char) p [2 * i + 1]);
        if (hi < 0 || lo < 0) {
            snprintf (self->error, sizeof self->error, "%s:%d: not a sha256 hex digest (64 hex digits)",
                      origin? origin: "keys", lineno);
            return -1;
        }
        key.hash [i] = (uint8_t) (hi << 4 | lo);
    }
    p += 2 * VDGX_SHA256_SIZE;
    if (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
        snprintf (self->error, sizeof self->error, "%s:%d: not a sha256 hex digest (64 hex digits)",
                  origin? origin: "keys", lineno);
        return -1;
    }
    //  Then a name and/or role=admin|user, in either order.
    size_t n = 0;
    const char *name = NULL;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t len = 0;
        while (p [len] && p [len] != '\r' && p [len] != '\n' && p [len] != ' ' && p [len] != '\t')
            len++;
        if (!len)
            break;
        if (len > 5 && strncmp (p, "role=", 5) == 0) {
            if (len == 10 && strncmp (p + 5, "admin", 5) == 0)
                key.admin = true;
            else
            if (!(len == 9 && strncmp (p + 5, "user", 4) == 0)) {
                snprintf (self->error, sizeof self->error, "%s:%d: role must be admin or user",
                          origin? origin: "keys", lineno);
                return -1;
            }
        }
        else
        if (!name) {
            name = p;
            n = len;
        }
        else {
            snprintf (self->error, sizeof self->error, "%s:%d: expected HASH [NAME] [role=admin|user]",
                      origin? origin: "keys", lineno);
            return -1;
        }
        p += len;
    }
    p = name? name: p;
    if (n > VDGX_APIKEY_NAME_MAX) {
        snprintf (self->error, sizeof self->error, "%s:%d: key name longer than %d bytes",
                  origin? origin: "keys", lineno, VDGX_APIKEY_NAME_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (!isalnum ((unsigned char) p [i]) && !strchr ("._-@", p [i])) {
            snprintf (self->error, sizeof self->error,
                      "%s:%d: key names are letters, digits and . _ - @", origin? origin: "keys", lineno);
            return -1;
        }
    if (n)
        memcpy (key.name, p, n);
    else
        snprintf (key.name, sizeof key.name, "key%zu", self->count + 1);
    if (self->count == self->alloc) {
        size_t alloc = self->alloc? 2 * self->alloc: 8;
        s_key_t *keys = (s_key_t *) realloc (self->keys, alloc * sizeof (s_key_t));
        if (!keys) {
            snprintf (self->error, sizeof self->error, "out of memory");
            return -1;
        }
        self->keys = keys;
        self->alloc = alloc;
    }
    self->keys [self->count++] = key;
    return 0;
}

int
vdgx_apikeys_load (vdgx_apikeys_t *self, const char *path)
{
    assert (self && path);
    FILE *file = fopen (path, "r");
    if (!file) {
        snprintf (self->error, sizeof self->error, "%s: %s", path, strerror (errno));
        return -1;
    }
    size_t before = self->count;
    char line [1024];
    int lineno = 0, rc = 0;
    while (fgets (line, sizeof line, file)) {
        lineno++;
        if (!strchr (line, '\n') && !feof (file)) {
            snprintf (self->error, sizeof self->error, "%s:%d: line too long", path, lineno);
            rc = -1;
            break;
        }
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\r' || *p == 0)
            continue;
        if (vdgx_apikeys_add_line (self, p, path, lineno)) {
            rc = -1;
            break;
        }
    }
    fclose (file);
    if (rc)
        self->count = before;     //  all or nothing
    return rc;
}

size_t
vdgx_apikeys_count (vdgx_apikeys_t *self)
{
    assert (self);
    return self->count;
}

const char *
vdgx_apikeys_error (vdgx_apikeys_t *self)
{
    assert (self);
    return self->error;
}

bool
vdgx_apikeys_equal (const void *a, const void *b, size_t size)
{
    const volatile uint8_t *x = (const volatile uint8_t *) a;
    const volatile uint8_t *y = (const volatile uint8_t *) b;
    uint8_t diff = 0;
    for (size_t i = 0; i < size; i++)
        diff |= x [i] ^ y [i];
    return diff == 0;
}

bool
vdgx_apikeys_check (vdgx_apikeys_t *self, const char *token, size_t token_len,
                    char *name, size_t name_size, bool *admin)
{
    assert (self);
    if (!token)
        return false;
    uint8_t digest [VDGX_SHA256_SIZE];
    vdgx_sha256_digest (token, token_len, digest);
    //  Every key is compared, whatever matched, so the time does not depend on which one.
    size_t found = SIZE_MAX;
    for (size_t i = 0; i < self->count; i++) {
        bool eq = vdgx_apikeys_equal (digest, self->keys [i].hash, VDGX_SHA256_SIZE);
        if (eq && found == SIZE_MAX)
            found = i;
    }
    if (found == SIZE_MAX)
        return false;
    if (name && name_size)
        snprintf (name, name_size, "%s", self->keys [found].name);
    if (admin)
        *admin = self->keys [found].admin;
    return true;
}

char *
vdgx_apikeys_hash_line (const char *secret, const char *name)
{
    assert (secret);
    char hex [VDGX_SHA256_HEX_SIZE];
    vdgx_sha256_hex (secret, strlen (secret), hex);
    size_t size = strlen (hex) + (name? strlen (name): 0) + 2;
    char *line = (char *) malloc (size);
    if (line)
        snprintf (line, size, "%s%s%s", hex, name && *name? " ": "", name && *name? name: "");
    return line;
}

void
vdgx_apikeys_test (bool verbose)
{
    (void) verbose;
    printf (" * vdgx_apikeys: ");
    vdgx_apikeys_t *keys = vdgx_apikeys_new ();
    assert (keys);
    char *line = vdgx_apikeys_hash_line ("s3cret-token", "alice");
    assert (line);
    assert (strlen (line) == 64 + 6);
    assert (strcmp (line + 64, " alice") == 0);
    char path [] = "/tmp/vdgx_apikeys_test_XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    FILE *file = fdopen (fd, "w");
    fprintf (file, "# comment\n\n%s\n", line);
    char *anon = vdgx_apikeys_hash_line ("other", NULL);
    fprintf (file, "  %s\n", anon);
    fclose (file);
    assert (vdgx_apikeys_load (keys, path) == 0);
    assert (vdgx_apikeys_count (keys) == 2);
    char name [VDGX_APIKEY_NAME_MAX + 1];
    assert (vdgx_apikeys_check (keys, "s3cret-token", 12, name, sizeof name, NULL));
    assert (strcmp (name, "alice") == 0);
    assert (vdgx_apikeys_check (keys, "other", 5, name, sizeof name, NULL));
    assert (strcmp (name, "key2") == 0);
    assert (!vdgx_apikeys_check (keys, "s3cret-tokeN", 12, name, sizeof name, NULL));
    assert (!vdgx_apikeys_check (keys, "s3cret-token", 11, name, sizeof name, NULL));
    assert (!vdgx_apikeys_check (keys, "", 0, name, sizeof name, NULL));
    //  Bad files are refused as a whole, naming the line.
    file = fopen (path, "w");
    fprintf (file, "%s\nnot-hex bob\n", line);
    fclose (file);
    assert (vdgx_apikeys_load (keys, path) == -1);
    assert (strstr (vdgx_apikeys_error (keys), ":2:"));
    assert (vdgx_apikeys_count (keys) == 2);
    file = fopen (path, "w");
    fprintf (file, "%sff\n", anon);         //  66 hex digits
    fclose (file);
    assert (vdgx_apikeys_load (keys, path) == -1);
    file = fopen (path, "w");
    fprintf (file, "%s bad/name\n", anon);
    fclose (file);
    assert (vdgx_apikeys_load (keys, path) == -1);
    assert (vdgx_apikeys_load (keys, "/nonexistent/vdgx-keys") == -1);
    //  Roles: role=admin or role=user (the default), before or after the name.
    char *ops = vdgx_apikeys_hash_line ("ops-secret", NULL);
    bool admin = true;
    assert (vdgx_apikeys_check (keys, "s3cret-token", 12, NULL, 0, &admin) && !admin);
    char entry [200];
    snprintf (entry, sizeof entry, "%s role=admin ops", ops);
    assert (vdgx_apikeys_add_line (keys, entry, "test", 1) == 0);
    assert (vdgx_apikeys_check (keys, "ops-secret", 10, name, sizeof name, &admin) && admin);
    assert (strcmp (name, "ops") == 0);
    snprintf (entry, sizeof entry, "%s ops role=root", ops);
    assert (vdgx_apikeys_add_line (keys, entry, "test", 1) == -1);
    snprintf (entry, sizeof entry, "%s ops extra", ops);
    assert (vdgx_apikeys_add_line (keys, entry, "test", 1) == -1);
    free (ops);
    unlink (path);
    assert (vdgx_apikeys_equal ("abcd", "abcd", 4));
    assert (!vdgx_apikeys_equal ("abcd", "abce", 4));
    free (line);
    free (anon);
    vdgx_apikeys_destroy (&keys);
    assert (keys == NULL);
    printf ("OK\n");
}
