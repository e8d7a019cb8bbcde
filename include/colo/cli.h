/*
 * cli.h — what the subcommands share: number parsing with user-facing errors,
 * and the subcommand entry points.
 */
#ifndef COLO_CLI_H
#define COLO_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "colo/compare.h"

/* The compare knobs, by QEMU's names (with '-' accepted for '_'), shared by subcommands. */
enum {
    CLI_OPT_COMPARE_TIMEOUT = 300,
    CLI_OPT_SCAN_CYCLE,
    CLI_OPT_MAX_QUEUE,
    CLI_OPT_MAX_CONNS,
    CLI_OPT_MIN_INTERVAL,
    CLI_OPT_BYPASS,
};

#define CLI_COMPARE_LONGOPTS                                                       \
    { "compare_timeout", required_argument, NULL, CLI_OPT_COMPARE_TIMEOUT },       \
    { "compare-timeout", required_argument, NULL, CLI_OPT_COMPARE_TIMEOUT },       \
    { "expired_scan_cycle", required_argument, NULL, CLI_OPT_SCAN_CYCLE },         \
    { "expired-scan-cycle", required_argument, NULL, CLI_OPT_SCAN_CYCLE },         \
    { "max_queue_size", required_argument, NULL, CLI_OPT_MAX_QUEUE },              \
    { "max-queue-size", required_argument, NULL, CLI_OPT_MAX_QUEUE },              \
    { "max-conns", required_argument, NULL, CLI_OPT_MAX_CONNS },                   \
    { "checkpoint-min-interval", required_argument, NULL, CLI_OPT_MIN_INTERVAL },     \
    { "bypass", required_argument, NULL, CLI_OPT_BYPASS }

#define CLI_COMPARE_HELP                                                                   \
    "  --compare_timeout MS        hold limit before a checkpoint (default 3000)\n"       \
    "  --expired_scan_cycle MS     connection expiry interval (default 1000)\n"          \
    "  --max_queue_size N          per-connection queue bound (default 1024)\n"         \
    "  --max-conns N               connection table size (default 65536)\n"             \
    "  --checkpoint-min-interval MS  ask for checkpoints at most this often (default 0: no limit)\n"  \
    "  --bypass RULE               leave flows uncompared, e.g. proto=udp,guest_port=123 (repeatable;\n" \
    "                              ';' separates rules; keys proto, guest, guest_port, peer, peer_port)\n"

/* Options every command has: its configuration file, and a dry run that checks it. */
enum { CLI_OPT_CONFIG = 350, CLI_OPT_CHECK, CLI_OPT_LOG, CLI_OPT_LOG_LEVEL };

#define CLI_COMMON_LONGOPTS                                                        \
    { "config", required_argument, NULL, CLI_OPT_CONFIG },                         \
    { "check", no_argument, NULL, CLI_OPT_CHECK },                                 \
    { "log", required_argument, NULL, CLI_OPT_LOG },                               \
    { "log-level", required_argument, NULL, CLI_OPT_LOG_LEVEL }

#define CLI_COMMON_HELP                                                                    \
    "  --config FILE               read this command's [group] of FILE first (docs/config.md)\n" \
    "  --check                     check the options and the config file, then exit\n"      \
    "  --log stderr|journal|file:PATH  where messages go (default stderr; SIGHUP reopens a file)\n" \
    "  --log-level LEVEL           error, warning, info (default) or debug\n"

/* What an apply function returns besides 0 (applied) and -1 (bad value, reported). */
#define CLI_HELP 1

typedef int (*cli_apply_fn)(void *ctx, int opt, const char *arg);

struct cli_parsed {
    bool help, check;
    const char *config_path; /* NULL: none */
    char **config_words;     /* the file's options; what apply kept points into them */
    int operands;            /* argv index of the first operand */
};

/*
 * Applies the options of --config FILE's [group] (if any), then argv's, through
 * `apply`. 0, or -1 after a one-line error (and, for a key from the file, a line
 * naming it). Free with cli_parsed_free once the options are no longer used.
 */
struct cli_spec {
    const char *group;              /* the command, and its group in the config file */
    const char *shortopts;
    const struct option *longopts;
    const char *const *file_only;   /* keys the file may have that are no options (NULL: none) */
    cli_apply_fn apply;
    bool takes_operands;            /* false: a word that is no option is an error (said by cli_parse) */
};

int cli_parse(const struct cli_spec *spec, int argc, char **argv, void *ctx, struct cli_parsed *out);
void cli_parsed_free(struct cli_parsed *p);

/* The verdict of --check: prints it (naming the file), returns the exit status (0 good, 2 bad). */
int cli_report_check(const char *command, const struct cli_parsed *p, int check_rc, const char *err);

/* Sends option errors to the log (log.h) instead of stderr: for reloads while running. */
void cli_errors_to_log(bool on);
/* An option error: "colo-proxy CMD: ..." on stderr while starting, to the log once a daemon runs (a reload). */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* After a bad option: one line pointing at the command's --help. */
void cli_usage_hint(const char *command);

/* The value of --config in argv (before any "--"), or NULL. */
const char *cli_config_path(int argc, char **argv);

/* Applies a compare knob: 0 applied, -1 bad value (reported), 1 not a compare knob. */
int cli_compare_option(int opt, const char *arg, struct colo_compare_config *cfg);

/* Parses a whole number >= min for option --name; prints a one-line error and returns -1. */
int cli_parse_u32(const char *name, const char *text, uint32_t min, uint32_t *out);

/*
 * A flag that also takes QEMU's key=on|off spelling: NULL (given alone), on,
 * true or yes set it; off, false or no clear it; -1 with a one-line error.
 */
int cli_parse_on_off(const char *name, const char *text, bool *out);
/* The value of such a flag: 1 (on, true, yes), 0 (off, false, no) or -1 (neither). */
int cli_on_off_value(const char *text);

/* How a command will use a path it is given. */
enum cli_path_use {
    CLI_PATH_READ,   /* a file it reads */
    CLI_PATH_CREATE, /* a file or socket it creates: its directory must exist and be writable */
    CLI_PATH_DIR,    /* a directory it writes files into */
};

/*
 * Will `path`, given with --option (NULL: an operand), work as `use` says? Every command checks
 * every path it will open with this, at --check and before it starts: -1 with a
 * line naming the option, the path and the fix.
 */
int cli_check_path(const char *option, const char *path, enum cli_path_use use, char *err, size_t errlen);

/*
 * A numeric UDP address given with --option: "HOST:PORT" or "[HOST]:PORT" (IPv6);
 * -1 with a one-line reason naming the option.
 */
struct sockaddr_storage;
int cli_parse_udp_addr(const char *option, const char *text, struct sockaddr_storage *ss, unsigned *len, char *err,
                       size_t errlen);

/*
 * A shared key given with --option: the file's bytes less one trailing newline, 16 to
 * 256 of them (WITNESS_KEY_MIN..MAX); -1 with a one-line reason and how to make one.
 */
int cli_read_key_file(const char *option, const char *path, uint8_t key[256], size_t *key_len, char *err,
                      size_t errlen);

/* Parses "aa:bb:cc:dd:ee:ff"; -1 with a one-line error. */
int cli_parse_mac(const char *name, const char *text, uint8_t mac[6]);

int cmd_replay(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_rewrite(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_witness(int argc, char **argv);

#endif
