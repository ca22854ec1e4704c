/*  vdgx_log.c - structured logging to stderr (see vdgx_log.h). */
#include "vdgx_log.h"

#include <assert.h>
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define S_LINE_MAX 4096

static atomic_int s_level = VDGX_LOG_INFO;
static atomic_bool s_level_read = false;
static pthread_mutex_t s_mutex = PTHREAD_MUTEX_INITIALIZER;
static char s_component [64] = "vdgx";
static FILE *s_stream = NULL;

static const char *s_level_names [] = { "error", "warn", "info", "debug" };
static const char *s_level_tags [] = { "ERROR", "WARN", "INFO", "DEBUG" };

int
vdgx_log_level_parse (const char *text, vdgx_log_level_t *level)
{
    if (!text)
        return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp (text, s_level_names [i]) == 0) {
            *level = (vdgx_log_level_t) i;
            return 0;
        }
    if (strcasecmp (text, "warning") == 0) {
        *level = VDGX_LOG_WARN;
        return 0;
    }
    return -1;
}

const char *
vdgx_log_level_name (vdgx_log_level_t level)
{
    return (unsigned) level < 4? s_level_names [level]: "?";
}

//  Reads VDGX_LOG_LEVEL once; returns the bad value (or NULL) so the caller can warn.
static const char *
s_read_env_level (void)
{
    const char *env = getenv ("VDGX_LOG_LEVEL");
    atomic_store (&s_level_read, true);
    if (!env || !*env)
        return NULL;
    vdgx_log_level_t level;
    if (vdgx_log_level_parse (env, &level) == 0) {
        atomic_store (&s_level, (int) level);
        return NULL;
    }
    return env;
}

void
vdgx_log_init (const char *component)
{
    if (component) {
        pthread_mutex_lock (&s_mutex);
        snprintf (s_component, sizeof s_component, "%s", component);
        pthread_mutex_unlock (&s_mutex);
    }
    const char *bad = s_read_env_level ();
    if (bad)
        vdgx_log_kv (VDGX_LOG_WARN, "log.level", "error", "invalid VDGX_LOG_LEVEL, using info",
                     "value", bad, NULL);
}

void
vdgx_log_set_level (vdgx_log_level_t level)
{
    assert ((unsigned) level < 4);
    atomic_store (&s_level_read, true);
    atomic_store (&s_level, (int) level);
}

vdgx_log_level_t
vdgx_log_level (void)
{
    if (!atomic_load (&s_level_read))
        s_read_env_level ();
    return (vdgx_log_level_t) atomic_load (&s_level);
}

bool
vdgx_log_enabled (vdgx_log_level_t level)
{
    return (int) level <= (int) vdgx_log_level ();
}

void
vdgx_log_set_stream (FILE *stream)
{
    pthread_mutex_lock (&s_mutex);
    s_stream = stream;
    pthread_mutex_unlock (&s_mutex);
}

//  Appends text to line at *len, escaping control characters so a record stays on one line.
static void
s_append_escaped (char *line, size_t *len, const char *text, bool quote_specials)
{
    for (const unsigned char *p = (const unsigned char *) text; *p && *len < S_LINE_MAX - 8; p++) {
        if (*p == '\n')      { line [(*len)++] = '\\'; line [(*len)++] = 'n'; }
        else if (*p == '\r') { line [(*len)++] = '\\'; line [(*len)++] = 'r'; }
        else if (*p == '\t') { line [(*len)++] = '\\'; line [(*len)++] = 't'; }
        else if (quote_specials && (*p == '"' || *p == '\\')) {
            line [(*len)++] = '\\';
            line [(*len)++] = (char) *p;
        }
        else if (*p < 0x20 || *p == 0x7f)
            *len += (size_t) snprintf (line + *len, S_LINE_MAX - *len, "\\x%02x", *p);
        else
            line [(*len)++] = (char) *p;
    }
}

static size_t
s_header (char *line, vdgx_log_level_t level, const char *event)
{
    struct timeval tv;
    gettimeofday (&tv, NULL);
    struct tm tm;
    gmtime_r (&tv.tv_sec, &tm);
    size_t len = strftime (line, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    len += (size_t) snprintf (line + len, S_LINE_MAX - len, ".%03dZ %s ",
                              (int) (tv.tv_usec / 1000), s_level_tags [level]);
    pthread_mutex_lock (&s_mutex);
    s_append_escaped (line, &len, s_component, false);
    pthread_mutex_unlock (&s_mutex);
    line [len++] = ' ';
    s_append_escaped (line, &len, event && *event? event: "-", false);
    return len;
}

static void
s_emit (char *line, size_t len)
{
    if (len > S_LINE_MAX - 2)
        len = S_LINE_MAX - 2;
    line [len++] = '\n';
    pthread_mutex_lock (&s_mutex);
    FILE *stream = s_stream? s_stream: stderr;
    fwrite (line, 1, len, stream);
    fflush (stream);
    pthread_mutex_unlock (&s_mutex);
}

void
vdgx_log_writev (vdgx_log_level_t level, const char *event, const char *fmt, va_list args)
{
    assert ((unsigned) level < 4);
    if (!vdgx_log_enabled (level))
        return;
    char line [S_LINE_MAX];
    size_t len = s_header (line, level, event);
    if (fmt && *fmt) {
        char body [S_LINE_MAX];
        vsnprintf (body, sizeof body, fmt, args);
        line [len++] = ' ';
        s_append_escaped (line, &len, body, false);
    }
    s_emit (line, len);
}

void
vdgx_log_write (vdgx_log_level_t level, const char *event, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vdgx_log_writev (level, event, fmt, args);
    va_end (args);
}

static bool
s_needs_quotes (const char *value)
{
    if (!*value)
        return true;
    for (const unsigned char *p = (const unsigned char *) value; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            return true;
    return false;
}

void
vdgx_log_kv (vdgx_log_level_t level, const char *event, ...)
{
    assert ((unsigned) level < 4);
    if (!vdgx_log_enabled (level))
        return;
    char line [S_LINE_MAX];
    size_t len = s_header (line, level, event);
    va_list args;
    va_start (args, event);
    const char *key;
    while ((key = va_arg (args, const char *)) != NULL) {
        const char *value = va_arg (args, const char *);
        if (len >= S_LINE_MAX - 16)
            continue;               //  keep consuming the pairs, drop what does not fit
        line [len++] = ' ';
        s_append_escaped (line, &len, key, false);
        line [len++] = '=';
        if (!value)
            line [len++] = '-';
        else
        if (s_needs_quotes (value)) {
            line [len++] = '"';
            s_append_escaped (line, &len, value, true);
            line [len++] = '"';
        }
        else
            s_append_escaped (line, &len, value, false);
    }
    va_end (args);
    s_emit (line, len);
}

//  --------------------------------------------------------------------------
//  Selftest

#undef NDEBUG
#include <assert.h>

//  Reads what the log wrote to a temp stream.
static char *
s_capture (FILE *stream)
{
    fflush (stream);
    long size = ftell (stream);
    assert (size >= 0);
    char *text = calloc (1, (size_t) size + 1);
    rewind (stream);
    size_t got = fread (text, 1, (size_t) size, stream);
    text [got] = 0;
    rewind (stream);
    assert (ftruncate (fileno (stream), 0) == 0);
    return text;
}

void
vdgx_log_test (bool verbose)
{
    (void) verbose;
    vdgx_log_level_t level;
    assert (vdgx_log_level_parse ("DEBUG", &level) == 0 && level == VDGX_LOG_DEBUG);
    assert (vdgx_log_level_parse ("warn", &level) == 0 && level == VDGX_LOG_WARN);
    assert (vdgx_log_level_parse ("loud", &level) == -1);
    assert (vdgx_log_level_parse (NULL, &level) == -1);

    FILE *stream = tmpfile ();
    assert (stream);
    vdgx_log_set_stream (stream);
    vdgx_log_init ("selftest");
    vdgx_log_set_level (VDGX_LOG_INFO);

    vdgx_log_info ("job.start", "id=%s attempt=%u", "abc", 2u);
    vdgx_log_debug ("hidden", "x=%d", 1);
    char *text = s_capture (stream);
    //  2026-11-27T14:30:01.123Z INFO selftest job.start id=abc attempt=2
    assert (strlen (text) > 24 && text [4] == '-' && text [10] == 'T' && text [23] == 'Z');
    assert (strstr (text, " INFO selftest job.start id=abc attempt=2\n"));
    assert (!strstr (text, "hidden"));
    free (text);

    vdgx_log_kv (VDGX_LOG_WARN, "peer.bad", "peer", "a b", "why", "say \"hi\"\nnow", "n", NULL,
                 "plain", "x", NULL);
    text = s_capture (stream);
    assert (strstr (text, " WARN selftest peer.bad peer=\"a b\" why=\"say \\\"hi\\\"\\nnow\" n=- plain=x\n"));
    //  Exactly one line.
    assert (strchr (text, '\n') == text + strlen (text) - 1);
    free (text);

    //  Filtering by level.
    vdgx_log_set_level (VDGX_LOG_ERROR);
    assert (!vdgx_log_enabled (VDGX_LOG_WARN));
    vdgx_log_warn ("dropped", NULL);
    vdgx_log_error ("kept", NULL);
    text = s_capture (stream);
    assert (!strstr (text, "dropped") && strstr (text, "ERROR selftest kept\n"));
    free (text);

    //  Environment: a bad value keeps the level at info and warns once.
    setenv ("VDGX_LOG_LEVEL", "nonsense", 1);
    vdgx_log_set_level (VDGX_LOG_INFO);
    vdgx_log_init (NULL);
    assert (vdgx_log_level () == VDGX_LOG_INFO);
    text = s_capture (stream);
    assert (strstr (text, "WARN selftest log.level") && strstr (text, "value=nonsense"));
    free (text);
    setenv ("VDGX_LOG_LEVEL", "debug", 1);
    vdgx_log_init (NULL);
    assert (vdgx_log_level () == VDGX_LOG_DEBUG);
    unsetenv ("VDGX_LOG_LEVEL");

    //  An overlong record is cut, still one line.
    char big [8000];
    memset (big, 'x', sizeof big - 1);
    big [sizeof big - 1] = 0;
    vdgx_log_kv (VDGX_LOG_INFO, "big", "v", big, NULL);
    text = s_capture (stream);
    assert (strlen (text) <= S_LINE_MAX && strchr (text, '\n') == text + strlen (text) - 1);
    free (text);

    vdgx_log_set_stream (NULL);
    vdgx_log_set_level (VDGX_LOG_INFO);
    vdgx_log_init ("vdgx");
    fclose (stream);
}
