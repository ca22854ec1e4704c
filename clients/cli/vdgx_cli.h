/*  vdgx_cli.h - internals shared by the `vdgx` command's source files (not a public API):
    the exit statuses (`vdgx --help` prints the same list), global settings, the commands.
*/
#ifndef VDGX_CLI_H_INCLUDED
#define VDGX_CLI_H_INCLUDED

#include <stdbool.h>
#include "vdgx_client.h"

#define VDGX_EXIT_OK            0   //  done
#define VDGX_EXIT_JOB_FAILED    1   //  the job failed, was cancelled or expired; `up` could not start
#define VDGX_EXIT_USAGE         2   //  bad command line or request (checked before sending)
#define VDGX_EXIT_UNREACHABLE   3   //  no answer from the broker in time (down, wrong address, CURVE)
#define VDGX_EXIT_NOT_FOUND     4   //  no such job or model
#define VDGX_EXIT_REFUSED       5   //  the broker refused the request (queue_full, conflict, ...)
#define VDGX_EXIT_UNHEALTHY     6   //  health: the broker answers but is not healthy
#define VDGX_EXIT_IO            7   //  local file error, or the download failed its sha256 check
#define VDGX_EXIT_INTERRUPTED   130 //  SIGINT / SIGTERM

//  Settings every command shares: --broker, --events, --timeout, --config, CURVE files.
typedef struct {
    const char *broker;             //  endpoint after flags > env > config > default
    const char *events;
    const char *config_path;        //  NULL = none
    int timeout_ms;                 //  per broker call
    const char *curve_server_key;   //  broker's public cert file, NULL = plain
    const char *curve_cert;         //  our secret cert file
    bool color;                     //  stdout is a TTY and NO_COLOR is unset
    const char *self_path;          //  the vdgx executable (finds sibling binaries)
    bool probed;                    //  the broker endpoint was checked for a listener
} vdgx_cli_t;

//  True when nothing listens at the broker endpoint (a refused connect, a missing ipc
//  socket): then there is no point waiting for replies. why says what was seen.
bool vdgx_cli_broker_absent (vdgx_cli_t *cli, char *why, size_t size);

//  A connected client per the global settings (NULL after printing an error). When no
//  broker listens at the endpoint it says so at once (suggesting `vdgx up`) and exits 3.
vdgx_client_t *vdgx_cli_client (vdgx_cli_t *cli);
//  Exit status for a client error (timeout -> 3, not_found -> 4, ...), after printing
//  "vdgx WHAT: code: message" on stderr.
int vdgx_cli_fail (vdgx_client_t *client, const char *what);

//  Commands: argv[0] is the command name; return the exit status.
int vdgx_cli_generate (vdgx_cli_t *cli, int argc, char **argv);
int vdgx_cli_wait (vdgx_cli_t *cli, int argc, char **argv);
int vdgx_cli_status (vdgx_cli_t *cli, int argc, char **argv);
int vdgx_cli_list (vdgx_cli_t *cli, int argc, char **argv);
int vdgx_cli_cancel (vdgx_cli_t *cli, int argc, char **argv);
int vdgx_cli_delete (vdgx_cli_t *cli, int argc, char **argv);
int vdgx_cli_download (vdgx_cli_t *cli, int argc, char **argv);
int vdgx_cli_workers (vdgx_cli_t *cli, int argc, char **argv);
int vdgx_cli_models (vdgx_cli_t *cli, int argc, char **argv);
int vdgx_cli_unload (vdgx_cli_t *cli, int argc, char **argv);
int vdgx_cli_drain (vdgx_cli_t *cli, int argc, char **argv);
int vdgx_cli_reset_limits (vdgx_cli_t *cli, int argc, char **argv);
int vdgx_cli_health (vdgx_cli_t *cli, int argc, char **argv);
int vdgx_cli_bench (vdgx_cli_t *cli, int argc, char **argv);
int vdgx_cli_up (vdgx_cli_t *cli, int argc, char **argv);
int vdgx_cli_down (vdgx_cli_t *cli, int argc, char **argv);
int vdgx_cli_backup (vdgx_cli_t *cli, int argc, char **argv);
int vdgx_cli_logs (vdgx_cli_t *cli, int argc, char **argv);
//  The data directory as `vdgx up` uses it (--data > config > VDGX_DATA_DIR > ./var),
//  absolute. 0, or -1 after printing the configuration error.
int vdgx_cli_data_dir (vdgx_cli_t *cli, const char *flag, char *buf, size_t size);

//  Parsing helpers: 0, or -1 after printing "vdgx CMD: OPTION ..." on stderr.
int vdgx_cli_parse_uint (const char *cmd, const char *opt, const char *text, unsigned long lo,
                         unsigned long hi, unsigned long *value);
int vdgx_cli_parse_double (const char *cmd, const char *opt, const char *text, double lo,
                           double hi, double *value);
//  Parses the generate-request options shared by `generate` and `bench` (opt is the long
//  option name without dashes). Returns 1 when opt is not one of them, 0 when parsed, -1 on a
//  bad value (message printed).
int vdgx_cli_genreq_option (const char *cmd, vdgx_genreq_t *req, const char *opt, const char *arg);

//  Set by the SIGINT/SIGTERM handler of long-running commands.
extern volatile int vdgx_cli_interrupted;
void vdgx_cli_catch_signals (void);

#endif
