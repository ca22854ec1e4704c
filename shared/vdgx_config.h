/*  vdgx_config.h - server configuration: one INI-like file plus VDGX_* environment overrides.

    File format (UTF-8, one setting per line):

        # comment (also ';'); blank lines are ignored
        [broker]
        endpoint     = tcp://127.0.0.1:5555     # VDGX_BROKER
        events       = tcp://127.0.0.1:5556     # VDGX_EVENTS
        heartbeat_ms = 2500                     # VDGX_HEARTBEAT_MS, 100..600000
        liveness     = 3                        # VDGX_LIVENESS, 1..100
        [bridge]
        http         = 127.0.0.1:8000           # VDGX_HTTP (host:port to listen on)
        [general]
        data_dir     = ./var                    # VDGX_DATA_DIR
        log_level    = info                     # VDGX_LOG_LEVEL

        [models]                                # the models `vdgx up` starts workers for
        wan21-1.3b = /data/weights/Wan2.1-T2V-1.3B   # model name = weights directory
        wan21-tiny = ./var/weights/wan21-tiny

        [worker.wan21-1.3b]                     # optional, per model listed in [models]
        workers    = 1                          # worker processes, 0..64 (default 1)
        precision  = bf16                       # default precision: fp32|bf16|fp8|fp4 (bf16)
        precisions = bf16, fp8                  # precisions it may serve (default: precision)
        device     = cuda:0                     # cpu | cuda:N (default cpu)
        engine     = wan21                      # engine name (default: the worker decides)

    Rules: a section header is `[name]` with name in [A-Za-z0-9._-]; `key = value` with key in
    [A-Za-z0-9_.-]; the value is trimmed, an unquoted '#' or ';' preceded by whitespace starts
    a comment; a value may be "double quoted" (\" \\ escapes) to keep spaces or '#'. A key
    repeated in one section is an error. Sections and keys this class does not know are kept
    (other components read them with the typed getters). Model names follow the generate
    request's rule (1..64 of [a-z0-9._-]); a [worker.NAME] whose NAME is not in [models] is an
    error. Every error names the file and line: "vdgx.ini:12: heartbeat_ms: not an integer".

    Precedence: embedded defaults < file < environment. Environment overrides:
        VDGX_BROKER -> broker.endpoint      VDGX_EVENTS -> broker.events
        VDGX_HEARTBEAT_MS -> broker.heartbeat_ms   VDGX_LIVENESS -> broker.liveness
        VDGX_HTTP -> bridge.http            VDGX_DATA_DIR -> general.data_dir
        VDGX_LOG_LEVEL -> general.log_level
    An empty environment variable counts as unset.

    Usage:
        vdgx_config_t *config = vdgx_config_new ();     //  defaults
        if (vdgx_config_load (config, path) || vdgx_config_apply_env (config))
            fprintf (stderr, "%s\n", vdgx_config_error (config));
        const char *endpoint = vdgx_config_broker_endpoint (config);
*/
#ifndef VDGX_CONFIG_H_INCLUDED
#define VDGX_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VDGX_DEFAULT_BROKER        "tcp://127.0.0.1:5555"
#define VDGX_DEFAULT_EVENTS        "tcp://127.0.0.1:5556"
#define VDGX_DEFAULT_HTTP          "127.0.0.1:8000"
#define VDGX_DEFAULT_DATA_DIR      "./var"
#define VDGX_DEFAULT_HEARTBEAT_MS  2500
#define VDGX_DEFAULT_LIVENESS      3

typedef struct _vdgx_config_t vdgx_config_t;

//  One model from [models] merged with its [worker.NAME] section. Strings are owned by the
//  config and live until it is destroyed or reloaded.
typedef struct {
    const char *name;
    const char *weights;            //  weights directory
    const char *engine;             //  "" when not set
    const char *device;             //  "cpu" by default
    const char *precision;          //  default precision
    const char *precisions [4];     //  allowed precisions, nprecisions of them
    size_t nprecisions;
    int workers;                    //  processes to start
} vdgx_model_conf_t;

//  New configuration holding the embedded defaults.
vdgx_config_t *vdgx_config_new (void);
void vdgx_config_destroy (vdgx_config_t **self_p);

//  Reads a file / a string (name is used in error messages) on top of the current settings.
//  Returns 0, or -1 with vdgx_config_error() set; on error the settings are left unchanged.
int vdgx_config_load (vdgx_config_t *self, const char *path);
int vdgx_config_load_string (vdgx_config_t *self, const char *text, const char *name);
//  Applies the VDGX_* overrides listed above. Returns 0, or -1 (bad value) with the error set.
int vdgx_config_apply_env (vdgx_config_t *self);
//  Text of the last error ("" when none).
const char *vdgx_config_error (vdgx_config_t *self);

//  Well-known settings, always valid after a successful load.
const char *vdgx_config_broker_endpoint (vdgx_config_t *self);
const char *vdgx_config_events_endpoint (vdgx_config_t *self);
const char *vdgx_config_http (vdgx_config_t *self);
const char *vdgx_config_data_dir (vdgx_config_t *self);
const char *vdgx_config_log_level (vdgx_config_t *self);
int vdgx_config_heartbeat_ms (vdgx_config_t *self);
int vdgx_config_liveness (vdgx_config_t *self);

//  Raw value, or NULL when the key is not set.
const char *vdgx_config_get (vdgx_config_t *self, const char *section, const char *key);
//  Sets a value (as if from the file; used by command-line options). Returns 0 or -1 when the
//  value is invalid for a well-known key (error set).
int vdgx_config_set (vdgx_config_t *self, const char *section, const char *key, const char *value);
//  Typed getters: *value = dflt when the key is absent. Return 0, or -1 with the error set
//  (naming file:line) when the value does not parse or is outside [min, max].
int vdgx_config_get_int (vdgx_config_t *self, const char *section, const char *key,
                         int64_t dflt, int64_t min, int64_t max, int64_t *value);
int vdgx_config_get_double (vdgx_config_t *self, const char *section, const char *key,
                            double dflt, double min, double max, double *value);
//  Accepts true/false, yes/no, on/off, 1/0.
int vdgx_config_get_bool (vdgx_config_t *self, const char *section, const char *key,
                          bool dflt, bool *value);
//  Accepts a byte count with an optional K, M, G, T suffix (powers of 1024), e.g. "24G".
int vdgx_config_get_size (vdgx_config_t *self, const char *section, const char *key,
                          uint64_t dflt, uint64_t *value);

//  Models, in the order of the [models] section.
size_t vdgx_config_model_count (vdgx_config_t *self);
const vdgx_model_conf_t *vdgx_config_model (vdgx_config_t *self, size_t index);
//  NULL when the model is not configured.
const vdgx_model_conf_t *vdgx_config_model_find (vdgx_config_t *self, const char *name);

void vdgx_config_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
