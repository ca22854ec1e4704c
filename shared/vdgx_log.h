/*  vdgx_log.h - structured logging to stderr.

    One line per record, never interleaved between threads:
        2026-11-27T14:30:01.123Z INFO broker job.start id=abc model="wan21 tiny"
    i.e. UTC timestamp, level, component, event name, then key=value pairs. Values that hold
    spaces, quotes, '=' or control characters are quoted with C-style escapes, so a record can
    be parsed back by splitting on spaces outside quotes.

    The level comes from VDGX_LOG_LEVEL (error|warn|info|debug, default info), read by
    vdgx_log_init() or lazily on the first record. Process-wide state; all calls are thread-safe.

    Two ways to write a record:
        vdgx_log_info ("job.start", "id=%s attempt=%u", id, attempt);   //  printf style
        vdgx_log_kv (VDGX_LOG_INFO, "job.start", "id", id, "model", model, NULL);  //  quoted
    In the printf style the caller owns the key=value layout; newlines are escaped anyway so a
    record is always one line. Use vdgx_log_kv for values from outside (prompts, peer names).
*/
#ifndef VDGX_LOG_H_INCLUDED
#define VDGX_LOG_H_INCLUDED

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    VDGX_LOG_ERROR = 0,
    VDGX_LOG_WARN = 1,
    VDGX_LOG_INFO = 2,
    VDGX_LOG_DEBUG = 3
} vdgx_log_level_t;

//  Sets the component name (e.g. "broker", "worker.wan21-tiny") and reads VDGX_LOG_LEVEL.
//  An invalid VDGX_LOG_LEVEL keeps "info" and logs one warning saying so.
void vdgx_log_init (const char *component);
void vdgx_log_set_level (vdgx_log_level_t level);
vdgx_log_level_t vdgx_log_level (void);
//  True when records at this level are written (skip expensive formatting otherwise).
bool vdgx_log_enabled (vdgx_log_level_t level);
//  Parses "error", "warn", "info", "debug" (case-insensitive). Returns 0 or -1.
int vdgx_log_level_parse (const char *text, vdgx_log_level_t *level);
const char *vdgx_log_level_name (vdgx_log_level_t level);
//  Redirects output (tests); NULL restores stderr. The stream is not closed.
void vdgx_log_set_stream (FILE *stream);

//  printf-style record; fmt holds the key=value pairs (may be NULL or "").
void vdgx_log_write (vdgx_log_level_t level, const char *event, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
void vdgx_log_writev (vdgx_log_level_t level, const char *event, const char *fmt, va_list args);
//  Key/value record: string pairs ended by NULL; NULL values print as -.
void vdgx_log_kv (vdgx_log_level_t level, const char *event, ...);

#define vdgx_log_error(event, ...) vdgx_log_write (VDGX_LOG_ERROR, (event), __VA_ARGS__)
#define vdgx_log_warn(event, ...)  vdgx_log_write (VDGX_LOG_WARN,  (event), __VA_ARGS__)
#define vdgx_log_info(event, ...)  vdgx_log_write (VDGX_LOG_INFO,  (event), __VA_ARGS__)
#define vdgx_log_debug(event, ...) vdgx_log_write (VDGX_LOG_DEBUG, (event), __VA_ARGS__)

void vdgx_log_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
