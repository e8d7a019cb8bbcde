/*
 * cli.h — what the subcommands share: number parsing with user-facing errors,
 * and the subcommand entry points.
 */
#ifndef COLO_CLI_H
#define COLO_CLI_H

#include <getopt.h>
#include <stdint.h>

#include "colo/compare.h"

/* The compare knobs, by QEMU's names (with '-' accepted for '_'), shared by subcommands. */
enum {
    CLI_OPT_COMPARE_TIMEOUT = 300,
    CLI_OPT_SCAN_CYCLE,
    CLI_OPT_MAX_QUEUE,
    CLI_OPT_MAX_CONNS,
    CLI_OPT_MIN_INTERVAL,
};

#define CLI_COMPARE_LONGOPTS                                                       \
    { "compare_timeout", required_argument, NULL, CLI_OPT_COMPARE_TIMEOUT },       \
    { "compare-timeout", required_argument, NULL, CLI_OPT_COMPARE_TIMEOUT },       \
    { "expired_scan_cycle", required_argument, NULL, CLI_OPT_SCAN_CYCLE },         \
    { "expired-scan-cycle", required_argument, NULL, CLI_OPT_SCAN_CYCLE },         \
    { "max_queue_size", required_argument, NULL, CLI_OPT_MAX_QUEUE },              \
    { "max-queue-size", required_argument, NULL, CLI_OPT_MAX_QUEUE },              \
    { "max-conns", required_argument, NULL, CLI_OPT_MAX_CONNS },                   \
    { "checkpoint-min-interval", required_argument, NULL, CLI_OPT_MIN_INTERVAL }

#define CLI_COMPARE_HELP                                                                   \
    "  --compare_timeout MS        hold limit before a checkpoint (default 3000)\n"       \
    "  --expired_scan_cycle MS     connection expiry interval (default 1000)\n"          \
    "  --max_queue_size N          per-connection queue bound (default 1024)\n"         \
    "  --max-conns N               connection table size (default 65536)\n"             \
    "  --checkpoint-min-interval MS  ask for checkpoints at most this often (default 0: no limit)\n"

/* Applies a compare knob: 0 applied, -1 bad value (reported), 1 not a compare knob. */
int cli_compare_option(int opt, const char *arg, struct colo_compare_config *cfg);

/* Parses a whole number >= min for option --name; prints a one-line error and returns -1. */
int cli_parse_u32(const char *name, const char *text, uint32_t min, uint32_t *out);

/* Parses "aa:bb:cc:dd:ee:ff"; -1 with a one-line error. */
int cli_parse_mac(const char *name, const char *text, uint8_t mac[6]);

int cmd_replay(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_rewrite(int argc, char **argv);
int cmd_status(int argc, char **argv);

#endif
