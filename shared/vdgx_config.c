/*  vdgx_config.c - INI-like configuration with VDGX_* overrides (format in vdgx_config.h). */
#include "vdgx_config.h"
#include "vdgx_genreq.h"
#include "vdgx_log.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_FILE_MAX (1024 * 1024)

typedef struct {
    char *section, *key, *value;
    char *origin;               //  file name, "VDGX_X" or "set"
    int line;                   //  0 when not from a file
} s_entry_t;

typedef struct {
    vdgx_model_conf_t conf;
    char *precisions_text;      //  owns the strings conf.precisions point into
} s_model_t;

struct _vdgx_config_t {
    s_entry_t *entries;
    size_t nentries, capacity;
    s_model_t *models;
    size_t nmodels;
    char error [512];
};

static const char *s_precisions [] = { "fp32", "bf16", "fp8", "fp4" };

static void
s_entries_free (s_entry_t *entries, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free (entries [i].section);
        free (entries [i].key);
        free (entries [i].value);
        free (entries [i].origin);
    }
    free (entries);
}

static void
s_models_free (s_model_t *models, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free (models [i].precisions_text);
    free (models);
}

static s_entry_t *
s_find (vdgx_config_t *self, const char *section, const char *key)
{
    for (size_t i = 0; i < self->nentries; i++)
        if (strcmp (self->entries [i].section, section) == 0 && strcmp (self->entries [i].key, key) == 0)
            return &self->entries [i];
    return NULL;
}

//  Sets or replaces an entry (no validation). Returns 0 or -1 (out of memory).
static int
s_put (vdgx_config_t *self, const char *section, const char *key, const char *value,
       const char *origin, int line)
{
    s_entry_t *entry = s_find (self, section, key);
    if (!entry) {
        if (self->nentries == self->capacity) {
            size_t capacity = self->capacity? self->capacity * 2: 32;
            s_entry_t *grown = realloc (self->entries, capacity * sizeof *grown);
            if (!grown)
                return -1;
            self->entries = grown;
            self->capacity = capacity;
        }
        entry = &self->entries [self->nentries];
        memset (entry, 0, sizeof *entry);
        entry->section = strdup (section);
        entry->key = strdup (key);
        if (!entry->section || !entry->key) {
            free (entry->section);
            free (entry->key);
            return -1;
        }
        self->nentries++;
    }
    char *v = strdup (value), *o = strdup (origin);
    if (!v || !o) {
        free (v);
        free (o);
        return -1;
    }
    free (entry->value);
    free (entry->origin);
    entry->value = v;
    entry->origin = o;
    entry->line = line;
    return 0;
}

static int
s_fail (vdgx_config_t *self, const s_entry_t *entry, const char *format, ...)
{
    char text [384];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    if (!entry)
        snprintf (self->error, sizeof self->error, "%s", text);
    else if (entry->line > 0)
        snprintf (self->error, sizeof self->error, "%s:%d: %s: %s", entry->origin, entry->line,
                  entry->key, text);
    else
        snprintf (self->error, sizeof self->error, "%s: %s.%s: %s", entry->origin,
                  entry->section, entry->key, text);
    return -1;
}

vdgx_config_t *
vdgx_config_new (void)
{
    vdgx_config_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    static const char *defaults [][3] = {
        { "broker", "endpoint", VDGX_DEFAULT_BROKER },
        { "broker", "events", VDGX_DEFAULT_EVENTS },
        { "broker", "heartbeat_ms", "2500" },
        { "broker", "liveness", "3" },
        { "bridge", "http", VDGX_DEFAULT_HTTP },
        { "general", "data_dir", VDGX_DEFAULT_DATA_DIR },
        { "general", "log_level", "info" },
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults [0]; i++)
        if (s_put (self, defaults [i][0], defaults [i][1], defaults [i][2], "default", 0)) {
            vdgx_config_destroy (&self);
            return NULL;
        }
    return self;
}

void
vdgx_config_destroy (vdgx_config_t **self_p)
{
    assert (self_p);
    vdgx_config_t *self = *self_p;
    if (self) {
        s_entries_free (self->entries, self->nentries);
        s_models_free (self->models, self->nmodels);
        free (self);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Value parsing

static int
s_parse_int (const char *text, int64_t *value)
{
    if (!*text)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll (text, &end, 10);
    if (errno || *end || isspace ((unsigned char) *text))
        return -1;
    *value = v;
    return 0;
}

static int
s_parse_size (const char *text, uint64_t *value)
{
    if (!*text || !isdigit ((unsigned char) *text))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull (text, &end, 10);
    if (errno)
        return -1;
    int shift = 0;
    if (*end) {
        switch (toupper ((unsigned char) *end)) {
            case 'K': shift = 10; break;
            case 'M': shift = 20; break;
            case 'G': shift = 30; break;
            case 'T': shift = 40; break;
            default: return -1;
        }
        end++;
        if (*end == 'B' || *end == 'b' || ((*end == 'i' || *end == 'I') && (end [1] == 'B' || end [1] == 'b')))
            end += (*end == 'i' || *end == 'I')? 2: 1;
        if (*end)
            return -1;
    }
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *value = (uint64_t) v << shift;
    return 0;
}

static bool
s_device_valid (const char *text)
{
    if (strcmp (text, "cpu") == 0)
        return true;
    if (strncmp (text, "cuda:", 5) != 0 || !text [5])
        return false;
    for (const char *p = text + 5; *p; p++)
        if (!isdigit ((unsigned char) *p))
            return false;
    return strlen (text + 5) <= 3;
}

static bool
s_http_valid (const char *text)
{
    const char *colon = strrchr (text, ':');
    if (!colon || colon == text)
        return false;
    int64_t port;
    return s_parse_int (colon + 1, &port) == 0 && port >= 1 && port <= 65535;
}

static int
s_precision_index (const char *text)
{
    for (int i = 0; i < 4; i++)
        if (strcmp (text, s_precisions [i]) == 0)
            return i;
    return -1;
}

//  Validates the well-known keys and rebuilds the model table.
static int
s_validate (vdgx_config_t *self)
{
    s_models_free (self->models, self->nmodels);
    self->models = NULL;
    self->nmodels = 0;
    for (size_t i = 0; i < self->nentries; i++) {
        s_entry_t *e = &self->entries [i];
        int64_t n;
        if (strcmp (e->section, "broker") == 0) {
            if (strcmp (e->key, "heartbeat_ms") == 0
            && (s_parse_int (e->value, &n) || n < 100 || n > 600000))
                return s_fail (self, e, "'%s' is not an integer in 100..600000", e->value);
            if (strcmp (e->key, "liveness") == 0
            && (s_parse_int (e->value, &n) || n < 1 || n > 100))
                return s_fail (self, e, "'%s' is not an integer in 1..100", e->value);
            if ((strcmp (e->key, "endpoint") == 0 || strcmp (e->key, "events") == 0)
            &&  !strstr (e->value, "://"))
                return s_fail (self, e, "'%s' is not a ZeroMQ endpoint (tcp://host:port)", e->value);
        }
        else
        if (strcmp (e->section, "bridge") == 0 && strcmp (e->key, "http") == 0) {
            if (!s_http_valid (e->value))
                return s_fail (self, e, "'%s' is not host:port", e->value);
        }
        else
        if (strcmp (e->section, "general") == 0) {
            vdgx_log_level_t level;
            if (strcmp (e->key, "log_level") == 0 && vdgx_log_level_parse (e->value, &level))
                return s_fail (self, e, "'%s' is not one of error, warn, info, debug", e->value);
            if (strcmp (e->key, "data_dir") == 0 && !*e->value)
                return s_fail (self, e, "must not be empty");
        }
        else
        if (strcmp (e->section, "models") == 0) {
            if (!vdgx_model_name_valid (e->key))
                return s_fail (self, e, "model names are 1..64 of a-z, 0-9, '.', '_', '-'");
            if (!*e->value)
                return s_fail (self, e, "the weights directory must not be empty");
            s_model_t *grown = realloc (self->models, (self->nmodels + 1) * sizeof *grown);
            if (!grown)
                return s_fail (self, NULL, "out of memory");
            self->models = grown;
            s_model_t *m = &self->models [self->nmodels++];
            memset (m, 0, sizeof *m);
            m->conf.name = e->key;
            m->conf.weights = e->value;
            m->conf.engine = "";
            m->conf.device = "cpu";
            m->conf.precision = "bf16";
            m->conf.workers = 1;
        }
    }
    //  [worker.NAME] sections, now that every model is known.
    for (size_t i = 0; i < self->nentries; i++) {
        s_entry_t *e = &self->entries [i];
        if (strncmp (e->section, "worker.", 7) != 0)
            continue;
        s_model_t *m = NULL;
        for (size_t k = 0; k < self->nmodels; k++)
            if (strcmp (self->models [k].conf.name, e->section + 7) == 0)
                m = &self->models [k];
        if (!m)
            return s_fail (self, e, "section [%s] names a model that is not in [models]", e->section);
        int64_t n;
        if (strcmp (e->key, "workers") == 0) {
            if (s_parse_int (e->value, &n) || n < 0 || n > 64)
                return s_fail (self, e, "'%s' is not an integer in 0..64", e->value);
            m->conf.workers = (int) n;
        }
        else
        if (strcmp (e->key, "precision") == 0) {
            if (s_precision_index (e->value) < 0)
                return s_fail (self, e, "'%s' is not one of fp32, bf16, fp8, fp4", e->value);
            m->conf.precision = e->value;
        }
        else
        if (strcmp (e->key, "device") == 0) {
            if (!s_device_valid (e->value))
                return s_fail (self, e, "'%s' is not cpu or cuda:N", e->value);
            m->conf.device = e->value;
        }
        else
        if (strcmp (e->key, "engine") == 0) {
            if (!vdgx_model_name_valid (e->value))
                return s_fail (self, e, "'%s' is not a valid engine name", e->value);
            m->conf.engine = e->value;
        }
        else
        if (strcmp (e->key, "precisions") == 0) {
            free (m->precisions_text);
            m->precisions_text = strdup (e->value);
            if (!m->precisions_text)
                return s_fail (self, NULL, "out of memory");
            m->conf.nprecisions = 0;
            char *save = NULL;
            for (char *tok = strtok_r (m->precisions_text, ", \t", &save); tok;
                 tok = strtok_r (NULL, ", \t", &save)) {
                if (s_precision_index (tok) < 0)
                    return s_fail (self, e, "'%s' is not one of fp32, bf16, fp8, fp4", tok);
                for (size_t k = 0; k < m->conf.nprecisions; k++)
                    if (strcmp (m->conf.precisions [k], tok) == 0)
                        return s_fail (self, e, "'%s' is listed twice", tok);
                m->conf.precisions [m->conf.nprecisions++] = tok;
            }
            if (m->conf.nprecisions == 0)
                return s_fail (self, e, "lists no precision");
        }
    }
    for (size_t k = 0; k < self->nmodels; k++) {
        vdgx_model_conf_t *c = &self->models [k].conf;
        if (c->nprecisions == 0) {
            c->precisions [0] = c->precision;
            c->nprecisions = 1;
        }
        bool listed = false;
        for (size_t p = 0; p < c->nprecisions; p++)
            listed |= strcmp (c->precisions [p], c->precision) == 0;
        if (!listed) {
            s_entry_t *e = NULL;
            char section [80];
            snprintf (section, sizeof section, "worker.%s", c->name);
            e = s_find (self, section, "precision");
            if (!e)
                e = s_find (self, section, "precisions");
            return s_fail (self, e, "precision %s is not among the precisions of model %s",
                           c->precision, c->name);
        }
    }
    return 0;
}

//  Runs op on a copy of self; on success the copy's entries replace self's.
static int
s_transaction_begin (vdgx_config_t *self, vdgx_config_t *copy)
{
    memset (copy, 0, sizeof *copy);
    for (size_t i = 0; i < self->nentries; i++) {
        s_entry_t *e = &self->entries [i];
        if (s_put (copy, e->section, e->key, e->value, e->origin, e->line)) {
            s_entries_free (copy->entries, copy->nentries);
            return s_fail (self, NULL, "out of memory");
        }
    }
    return 0;
}

static int
s_transaction_end (vdgx_config_t *self, vdgx_config_t *copy, int rc)
{
    if (rc == 0)
        rc = s_validate (copy);
    if (rc == 0) {
        s_entries_free (self->entries, self->nentries);
        s_models_free (self->models, self->nmodels);
        self->entries = copy->entries;
        self->nentries = copy->nentries;
        self->capacity = copy->capacity;
        self->models = copy->models;
        self->nmodels = copy->nmodels;
        self->error [0] = 0;
    }
    else {
        memcpy (self->error, copy->error, sizeof self->error);
        s_entries_free (copy->entries, copy->nentries);
        s_models_free (copy->models, copy->nmodels);
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Parser

static bool
s_name_char (char c)
{
    return isalnum ((unsigned char) c) || c == '.' || c == '_' || c == '-';
}

static int
s_parse (vdgx_config_t *self, const char *text, const char *name)
{
    char section [128] = "";
    bool in_section = false;
    int lineno = 0;
    //  Keys seen in this text, to catch repeats (earlier files may be overridden).
    vdgx_config_t seen;
    memset (&seen, 0, sizeof seen);
    int rc = 0;
    const char *p = text;
    while (*p && rc == 0) {
        lineno++;
        const char *eol = strchr (p, '\n');
        size_t len = eol? (size_t) (eol - p): strlen (p);
        char *line = malloc (len + 1);
        if (!line) {
            rc = s_fail (self, NULL, "out of memory");
            break;
        }
        memcpy (line, p, len);
        line [len] = 0;
        p += len + (eol? 1: 0);
        if (len && line [len - 1] == '\r')
            line [--len] = 0;
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#' || *s == ';') {
            free (line);
            continue;
        }
#define FAIL(...) do { char m_ [256]; snprintf (m_, sizeof m_, __VA_ARGS__); \
            snprintf (self->error, sizeof self->error, "%s:%d: %s", name, lineno, m_); \
            rc = -1; free (line); goto done; } while (0)
        if (*s == '[') {
            char *close = strchr (s, ']');
            if (!close)
                FAIL ("section header without ']'");
            *close = 0;
            char *rest = close + 1;
            while (*rest == ' ' || *rest == '\t')
                rest++;
            if (*rest && *rest != '#' && *rest != ';')
                FAIL ("unexpected text after the section header");
            char *sec = s + 1;
            if (!*sec || strlen (sec) >= sizeof section)
                FAIL ("section names are 1..127 characters");
            for (char *c = sec; *c; c++)
                if (!s_name_char (*c))
                    FAIL ("invalid character '%c' in section name", isprint ((unsigned char) *c)? *c: '?');
            snprintf (section, sizeof section, "%s", sec);
            in_section = true;
            free (line);
            continue;
        }
        char *k = s;
        while (*s && s_name_char (*s))
            s++;
        if (s == k)
            FAIL ("expected 'key = value' or '[section]'");
        char *key_end = s;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s != '=')
            FAIL ("expected '=' after the key");
        *key_end = 0;
        s++;
        if (!in_section)
            FAIL ("key '%s' outside a [section]", k);
        while (*s == ' ' || *s == '\t')
            s++;
        char *value = s;
        if (*s == '"') {
            char *out = value;
            s++;
            while (*s && *s != '"') {
                if (*s == '\\') {
                    s++;
                    if (*s != '"' && *s != '\\')
                        FAIL ("only \\\" and \\\\ escapes are allowed in quoted values");
                }
                *out++ = *s++;
            }
            if (*s != '"')
                FAIL ("unterminated quoted value");
            s++;
            *out = 0;
            while (*s == ' ' || *s == '\t')
                s++;
            if (*s && *s != '#' && *s != ';')
                FAIL ("unexpected text after the quoted value");
        }
        else {
            //  A comment starts at '#'/';' preceded by whitespace.
            char *c = s;
            while (*c) {
                if ((*c == '#' || *c == ';') && (c [-1] == ' ' || c [-1] == '\t' || c [-1] == '='))
                    break;
                c++;
            }
            *c = 0;
            while (c > value && (c [-1] == ' ' || c [-1] == '\t'))
                *--c = 0;
        }
        for (const char *c = value; *c; c++)
            if ((unsigned char) *c < 0x20 && *c != '\t')
                FAIL ("control character in value");
        if (s_find (&seen, section, k))
            FAIL ("key '%s' repeated in [%s] (first on line %d)", k, section,
                  s_find (&seen, section, k)->line);
        if (s_put (&seen, section, k, "", name, lineno) || s_put (self, section, k, value, name, lineno))
            FAIL ("out of memory");
        free (line);
#undef FAIL
    }
done:
    s_entries_free (seen.entries, seen.nentries);
    return rc;
}

int
vdgx_config_load_string (vdgx_config_t *self, const char *text, const char *name)
{
    assert (self && text);
    vdgx_config_t copy;
    if (s_transaction_begin (self, &copy))
        return -1;
    return s_transaction_end (self, &copy, s_parse (&copy, text, name? name: "config"));
}

int
vdgx_config_load (vdgx_config_t *self, const char *path)
{
    assert (self && path);
    FILE *file = fopen (path, "rb");
    if (!file)
        return s_fail (self, NULL, "%s: cannot open: %s", path, strerror (errno));
    char *text = malloc (S_FILE_MAX + 1);
    if (!text) {
        fclose (file);
        return s_fail (self, NULL, "out of memory");
    }
    size_t size = fread (text, 1, S_FILE_MAX + 1, file);
    int failed = ferror (file);
    fclose (file);
    int rc;
    if (failed)
        rc = s_fail (self, NULL, "%s: read error", path);
    else
    if (size > S_FILE_MAX)
        rc = s_fail (self, NULL, "%s: larger than %d bytes", path, S_FILE_MAX);
    else
    if (memchr (text, 0, size))
        rc = s_fail (self, NULL, "%s: holds a NUL byte (not a text file)", path);
    else {
        text [size] = 0;
        rc = vdgx_config_load_string (self, text, path);
    }
    free (text);
    return rc;
}

int
vdgx_config_apply_env (vdgx_config_t *self)
{
    assert (self);
    static const char *map [][3] = {
        { "VDGX_BROKER", "broker", "endpoint" },
        { "VDGX_EVENTS", "broker", "events" },
        { "VDGX_HEARTBEAT_MS", "broker", "heartbeat_ms" },
        { "VDGX_LIVENESS", "broker", "liveness" },
        { "VDGX_HTTP", "bridge", "http" },
        { "VDGX_DATA_DIR", "general", "data_dir" },
        { "VDGX_LOG_LEVEL", "general", "log_level" },
    };
    vdgx_config_t copy;
    if (s_transaction_begin (self, &copy))
        return -1;
    int rc = 0;
    for (size_t i = 0; i < sizeof map / sizeof map [0] && rc == 0; i++) {
        const char *value = getenv (map [i][0]);
        if (value && *value && s_put (&copy, map [i][1], map [i][2], value, map [i][0], 0))
            rc = s_fail (&copy, NULL, "out of memory");
    }
    return s_transaction_end (self, &copy, rc);
}

int
vdgx_config_set (vdgx_config_t *self, const char *section, const char *key, const char *value)
{
    assert (self && section && key && value);
    vdgx_config_t copy;
    if (s_transaction_begin (self, &copy))
        return -1;
    int rc = s_put (&copy, section, key, value, "set", 0)? s_fail (&copy, NULL, "out of memory"): 0;
    return s_transaction_end (self, &copy, rc);
}

const char *
vdgx_config_error (vdgx_config_t *self)
{
    assert (self);
    return self->error;
}

const char *
vdgx_config_get (vdgx_config_t *self, const char *section, const char *key)
{
    assert (self && section && key);
    s_entry_t *e = s_find (self, section, key);
    return e? e->value: NULL;
}

const char *vdgx_config_broker_endpoint (vdgx_config_t *self) { return vdgx_config_get (self, "broker", "endpoint"); }
const char *vdgx_config_events_endpoint (vdgx_config_t *self) { return vdgx_config_get (self, "broker", "events"); }
const char *vdgx_config_http (vdgx_config_t *self) { return vdgx_config_get (self, "bridge", "http"); }
const char *vdgx_config_data_dir (vdgx_config_t *self) { return vdgx_config_get (self, "general", "data_dir"); }
const char *vdgx_config_log_level (vdgx_config_t *self) { return vdgx_config_get (self, "general", "log_level"); }

int
vdgx_config_heartbeat_ms (vdgx_config_t *self)
{
    return atoi (vdgx_config_get (self, "broker", "heartbeat_ms"));
}

int
vdgx_config_liveness (vdgx_config_t *self)
{
    return atoi (vdgx_config_get (self, "broker", "liveness"));
}

int
vdgx_config_get_int (vdgx_config_t *self, const char *section, const char *key,
                     int64_t dflt, int64_t min, int64_t max, int64_t *value)
{
    s_entry_t *e = s_find (self, section, key);
    if (!e) {
        *value = dflt;
        return 0;
    }
    int64_t v;
    if (s_parse_int (e->value, &v))
        return s_fail (self, e, "'%s' is not an integer", e->value);
    if (v < min || v > max)
        return s_fail (self, e, "%" PRId64 " is outside %" PRId64 "..%" PRId64, v, min, max);
    *value = v;
    return 0;
}

int
vdgx_config_get_double (vdgx_config_t *self, const char *section, const char *key,
                        double dflt, double min, double max, double *value)
{
    s_entry_t *e = s_find (self, section, key);
    if (!e) {
        *value = dflt;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod (e->value, &end);
    if (!*e->value || *end || errno || !isfinite (v) || isspace ((unsigned char) *e->value))
        return s_fail (self, e, "'%s' is not a number", e->value);
    if (v < min || v > max)
        return s_fail (self, e, "%g is outside %g..%g", v, min, max);
    *value = v;
    return 0;
}

int
vdgx_config_get_bool (vdgx_config_t *self, const char *section, const char *key,
                      bool dflt, bool *value)
{
    s_entry_t *e = s_find (self, section, key);
    if (!e) {
        *value = dflt;
        return 0;
    }
    static const char *yes [] = { "true", "yes", "on", "1" }, *no [] = { "false", "no", "off", "0" };
    for (int i = 0; i < 4; i++) {
        if (strcasecmp (e->value, yes [i]) == 0) { *value = true; return 0; }
        if (strcasecmp (e->value, no [i]) == 0) { *value = false; return 0; }
    }
    return s_fail (self, e, "'%s' is not a boolean (true/false, yes/no, on/off, 1/0)", e->value);
}

int
vdgx_config_get_size (vdgx_config_t *self, const char *section, const char *key,
                      uint64_t dflt, uint64_t *value)
{
    s_entry_t *e = s_find (self, section, key);
    if (!e) {
        *value = dflt;
        return 0;
    }
    uint64_t v;
    if (s_parse_size (e->value, &v))
        return s_fail (self, e, "'%s' is not a size (bytes, or with K, M, G, T)", e->value);
    *value = v;
    return 0;
}

size_t
vdgx_config_model_count (vdgx_config_t *self)
{
    assert (self);
    return self->nmodels;
}

const vdgx_model_conf_t *
vdgx_config_model (vdgx_config_t *self, size_t index)
{
    assert (self);
    return index < self->nmodels? &self->models [index].conf: NULL;
}

const vdgx_model_conf_t *
vdgx_config_model_find (vdgx_config_t *self, const char *name)
{
    assert (self && name);
    for (size_t i = 0; i < self->nmodels; i++)
        if (strcmp (self->models [i].conf.name, name) == 0)
            return &self->models [i].conf;
    return NULL;
}

//  --------------------------------------------------------------------------
//  Selftest

#undef NDEBUG
#include <assert.h>
#include <fcntl.h>
#include <unistd.h>

static void
s_expect_error (const char *text, const char *want)
{
    vdgx_config_t *config = vdgx_config_new ();
    assert (config);
    int rc = vdgx_config_load_string (config, text, "t.ini");
    if (rc != -1 || !strstr (vdgx_config_error (config), want)) {
        fprintf (stderr, "config: for %s\n  want error containing '%s'\n  got rc=%d '%s'\n",
                 text, want, rc, vdgx_config_error (config));
        assert (false);
    }
    //  Settings untouched after an error.
    assert (vdgx_config_heartbeat_ms (config) == 2500);
    vdgx_config_destroy (&config);
}

void
vdgx_config_test (bool verbose)
{
    (void) verbose;
    static const char *env [] = { "VDGX_BROKER", "VDGX_EVENTS", "VDGX_HEARTBEAT_MS",
        "VDGX_LIVENESS", "VDGX_HTTP", "VDGX_DATA_DIR", "VDGX_LOG_LEVEL" };
    for (size_t i = 0; i < sizeof env / sizeof env [0]; i++)
        unsetenv (env [i]);

    vdgx_config_t *config = vdgx_config_new ();
    assert (config);
    assert (strcmp (vdgx_config_broker_endpoint (config), "tcp://127.0.0.1:5555") == 0);
    assert (strcmp (vdgx_config_events_endpoint (config), "tcp://127.0.0.1:5556") == 0);
    assert (strcmp (vdgx_config_http (config), "127.0.0.1:8000") == 0);
    assert (strcmp (vdgx_config_data_dir (config), "./var") == 0);
    assert (vdgx_config_heartbeat_ms (config) == 2500 && vdgx_config_liveness (config) == 3);
    assert (vdgx_config_model_count (config) == 0);

    const char *text =
        "# VideosDGX test config\r\n"
        "[broker]\n"
        "endpoint = tcp://0.0.0.0:6000   # comment\n"
        "heartbeat_ms=1000\n"
        "\n"
        "  ; indented comment\n"
        "[general]\n"
        "data_dir = \"/tmp/with space # not a comment\"\n"
        "[cache]\n"
        "max_bytes = 24G\n"
        "enabled = yes\n"
        "ratio = 0.75\n"
        "path = a#b\n"
        "empty = # only a comment\n"
        "[models]\n"
        "wan21-1.3b = /weights/wan\n"
        "wan21-tiny = ./tiny\n"
        "[worker.wan21-1.3b]\n"
        "workers = 2\n"
        "precision = fp8\n"
        "precisions = bf16, fp8 fp4\n"
        "device = cuda:0\n"
        "engine = wan21\n";
    assert (vdgx_config_load_string (config, text, "t.ini") == 0);
    assert (strcmp (vdgx_config_broker_endpoint (config), "tcp://0.0.0.0:6000") == 0);
    assert (vdgx_config_heartbeat_ms (config) == 1000 && vdgx_config_liveness (config) == 3);
    assert (strcmp (vdgx_config_data_dir (config), "/tmp/with space # not a comment") == 0);
    assert (strcmp (vdgx_config_get (config, "cache", "path"), "a#b") == 0);
    assert (strcmp (vdgx_config_get (config, "cache", "empty"), "") == 0);
    uint64_t size;
    bool flag;
    double ratio;
    int64_t n;
    assert (vdgx_config_get_size (config, "cache", "max_bytes", 0, &size) == 0 && size == 24ull << 30);
    assert (vdgx_config_get_bool (config, "cache", "enabled", false, &flag) == 0 && flag);
    assert (vdgx_config_get_double (config, "cache", "ratio", 0, 0, 1, &ratio) == 0 && ratio == 0.75);
    assert (vdgx_config_get_int (config, "cache", "missing", 7, 0, 10, &n) == 0 && n == 7);
    assert (vdgx_config_get_int (config, "cache", "path", 7, 0, 10, &n) == -1);
    assert (strstr (vdgx_config_error (config), "t.ini:13: path: 'a#b' is not an integer"));
    assert (vdgx_config_get_double (config, "cache", "ratio", 0, 0, 0.5, &ratio) == -1);
    assert (vdgx_config_get_bool (config, "cache", "max_bytes", false, &flag) == -1);

    assert (vdgx_config_model_count (config) == 2);
    const vdgx_model_conf_t *m = vdgx_config_model (config, 0);
    assert (strcmp (m->name, "wan21-1.3b") == 0 && strcmp (m->weights, "/weights/wan") == 0);
    assert (m->workers == 2 && strcmp (m->precision, "fp8") == 0 && m->nprecisions == 3);
    assert (strcmp (m->precisions [2], "fp4") == 0 && strcmp (m->device, "cuda:0") == 0);
    assert (strcmp (m->engine, "wan21") == 0);
    m = vdgx_config_model_find (config, "wan21-tiny");
    assert (m && m->workers == 1 && strcmp (m->precision, "bf16") == 0 && m->nprecisions == 1);
    assert (strcmp (m->device, "cpu") == 0 && strcmp (m->engine, "") == 0);
    assert (vdgx_config_model_find (config, "nope") == NULL);
    assert (vdgx_config_model (config, 2) == NULL);

    //  Environment beats the file; bad environment values are errors naming the variable.
    setenv ("VDGX_BROKER", "tcp://10.0.0.1:7000", 1);
    setenv ("VDGX_DATA_DIR", "", 1);          //  empty counts as unset
    assert (vdgx_config_apply_env (config) == 0);
    assert (strcmp (vdgx_config_broker_endpoint (config), "tcp://10.0.0.1:7000") == 0);
    assert (strcmp (vdgx_config_data_dir (config), "/tmp/with space # not a comment") == 0);
    setenv ("VDGX_HEARTBEAT_MS", "fast", 1);
    assert (vdgx_config_apply_env (config) == -1);
    assert (strstr (vdgx_config_error (config), "VDGX_HEARTBEAT_MS: broker.heartbeat_ms: 'fast'"));
    assert (vdgx_config_heartbeat_ms (config) == 1000);
    for (size_t i = 0; i < sizeof env / sizeof env [0]; i++)
        unsetenv (env [i]);

    //  set() validates like the file.
    assert (vdgx_config_set (config, "broker", "liveness", "5") == 0 && vdgx_config_liveness (config) == 5);
    assert (vdgx_config_set (config, "broker", "liveness", "0") == -1);
    assert (vdgx_config_liveness (config) == 5);

    //  A second file adds to the first (and may override its keys).
    assert (vdgx_config_load_string (config, "[broker]\nheartbeat_ms = 3000\n", "b.ini") == 0);
    assert (vdgx_config_heartbeat_ms (config) == 3000 && vdgx_config_model_count (config) == 2);

    //  Files.
    char path [] = "/tmp/vdgx-config-XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    const char *file = "[bridge]\nhttp = 0.0.0.0:9000\n";
    assert (write (fd, file, strlen (file)) == (ssize_t) strlen (file));
    close (fd);
    assert (vdgx_config_load (config, path) == 0);
    assert (strcmp (vdgx_config_http (config), "0.0.0.0:9000") == 0);
    fd = open (path, O_WRONLY | O_TRUNC);
    assert (fd >= 0);
    assert (write (fd, "[a]\nb = \0c\n", 11) == 11);
    close (fd);
    assert (vdgx_config_load (config, path) == -1 && strstr (vdgx_config_error (config), "NUL"));
    unlink (path);
    assert (vdgx_config_load (config, path) == -1 && strstr (vdgx_config_error (config), "cannot open"));
    vdgx_config_destroy (&config);
    assert (config == NULL);

    //  Malformed files: each error names the line.
    s_expect_error ("[broker\nx=1\n", "t.ini:1: section header without ']'");
    s_expect_error ("x = 1\n", "t.ini:1: key 'x' outside a [section]");
    s_expect_error ("[a]\n\nnovalue\n", "t.ini:3: expected '=' after the key");
    s_expect_error ("[a]\n= 3\n", "t.ini:2: expected 'key = value'");
    s_expect_error ("[a b]\n", "t.ini:1: invalid character ' '");
    s_expect_error ("[]\n", "t.ini:1: section names");
    s_expect_error ("[a] junk\n", "t.ini:1: unexpected text after the section header");
    s_expect_error ("[a]\nk = \"open\n", "t.ini:2: unterminated quoted value");
    s_expect_error ("[a]\nk = \"x\" y\n", "t.ini:2: unexpected text after the quoted value");
    s_expect_error ("[a]\nk = \"\\n\"\n", "t.ini:2: only");
    s_expect_error ("[a]\nk = 1\nk = 2\n", "t.ini:3: key 'k' repeated in [a] (first on line 2)");
    s_expect_error ("[broker]\nheartbeat_ms = 2.5s\n", "t.ini:2: heartbeat_ms: '2.5s' is not an integer");
    s_expect_error ("[broker]\nheartbeat_ms = 99\n", "t.ini:2: heartbeat_ms");
    s_expect_error ("[broker]\nliveness = 101\n", "t.ini:2: liveness");
    s_expect_error ("[broker]\nendpoint = localhost\n", "t.ini:2: endpoint: 'localhost' is not a ZeroMQ endpoint");
    s_expect_error ("[bridge]\nhttp = 127.0.0.1:99999\n", "t.ini:2: http");
    s_expect_error ("[general]\nlog_level = loud\n", "t.ini:2: log_level");
    s_expect_error ("[models]\nWan = /w\n", "t.ini:2: Wan: model names");
    s_expect_error ("[models]\nwan =\n", "t.ini:2: wan: the weights directory must not be empty");
    s_expect_error ("[models]\nwan = /w\n[worker.other]\nworkers = 1\n",
                    "t.ini:4: workers: section [worker.other] names a model that is not in [models]");
    s_expect_error ("[models]\nwan = /w\n[worker.wan]\nworkers = 65\n", "t.ini:4: workers");
    s_expect_error ("[models]\nwan = /w\n[worker.wan]\nprecision = int8\n", "t.ini:4: precision");
    s_expect_error ("[models]\nwan = /w\n[worker.wan]\ndevice = gpu\n", "t.ini:4: device");
    s_expect_error ("[models]\nwan = /w\n[worker.wan]\nprecisions = fp8 fp8\n", "listed twice");
    s_expect_error ("[models]\nwan = /w\n[worker.wan]\nprecision = fp32\nprecisions = bf16\n",
                    "t.ini:4: precision: precision fp32 is not among");
    s_expect_error ("[a]\nk = x\001y\n", "t.ini:2: control character");
}
