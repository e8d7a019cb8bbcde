/*
 * proxy_main.c — the `colo-proxy` command line: subcommands and their options.
 *
 * Owns: argument parsing, turning options into module configurations, and
 * exit codes (0 success, 1 the input showed a problem the user asked about —
 * never used for divergences, which are results —, 2 usage or input errors).
 * Option names follow QEMU's colo-compare where QEMU has one
 * (compare_timeout, expired_scan_cycle, max_queue_size), with '-' accepted for
 * '_'.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "colo/replay.h"

enum {
    OPT_OUT = 'o',
    OPT_JSON = 'j',
    OPT_HELP = 'h',
    OPT_COMPARE_TIMEOUT = 256,
    OPT_SCAN_CYCLE,
    OPT_MAX_QUEUE,
    OPT_MAX_CONNS,
    OPT_CHECKPOINT_MS,
    OPT_CHECKPOINT_TIMES,
    OPT_VNET_HDR,
};

static void replay_usage(FILE *out)
{
    fputs("usage: colo-proxy replay [options] PRIMARY.pcap SECONDARY.pcap\n"
          "  Compares what a PVM sent (PRIMARY) with what its SVM sent (SECONDARY, as it\n"
          "  reaches the primary host) and reports what colo-proxy would release and when\n"
          "  it would ask for checkpoints. Pcap timestamps drive the clock.\n"
          "options:\n"
          "  -o, --out FILE              write released frames, in release order, to FILE\n"
          "  -j, --json                  print the report as JSON\n"
          "  --compare_timeout MS        hold limit before a checkpoint (default 3000)\n"
          "  --expired_scan_cycle MS     connection expiry interval (default 1000)\n"
          "  --max_queue_size N          per-connection queue bound (default 1024)\n"
          "  --max-conns N               connection table size (default 65536)\n"
          "  --checkpoint-ms N|none      a requested checkpoint completes N ms later (default 90)\n"
          "  --checkpoint-times FILE     recorded checkpoints, lines of '<begin_s> <end_s>'\n"
          "  --vnet-hdr[=LEN]            frames start with a virtio-net header (default 12)\n",
          out);
}

static int parse_u32(const char *name, const char *s, uint32_t min, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < min || v > UINT32_MAX - 1) {
        fprintf(stderr, "colo-proxy: --%s '%s' is not a whole number >= %u\n", name, s, min);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static int apply_replay_option(int c, struct replay_options *opt, bool *json)
{
    switch (c) {
    case OPT_OUT: opt->output_path = optarg; return 0;
    case OPT_JSON: *json = true; return 0;
    case OPT_COMPARE_TIMEOUT:
        return parse_u32("compare_timeout", optarg, 1, &opt->compare.compare_timeout_ms);
    case OPT_SCAN_CYCLE:
        return parse_u32("expired_scan_cycle", optarg, 1, &opt->compare.expired_scan_cycle_ms);
    case OPT_MAX_QUEUE:
        return parse_u32("max_queue_size", optarg, 1, &opt->compare.max_queue_size);
    case OPT_MAX_CONNS: return parse_u32("max-conns", optarg, 1, &opt->compare.max_conns);
    case OPT_CHECKPOINT_MS:
        if (strcmp(optarg, "none") == 0) {
            opt->checkpoint_ms = REPLAY_NO_MODEL;
            return 0;
        }
        return parse_u32("checkpoint-ms", optarg, 0, &opt->checkpoint_ms);
    case OPT_CHECKPOINT_TIMES: opt->checkpoint_times_path = optarg; return 0;
    case OPT_VNET_HDR:
        if (!optarg) {
            opt->vnet_hdr_len = 12;
            return 0;
        }
        return parse_u32("vnet-hdr", optarg, 0, &opt->vnet_hdr_len);
    default: return -1;
    }
}

static int cmd_replay(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "out", required_argument, NULL, OPT_OUT },
        { "json", no_argument, NULL, OPT_JSON },
        { "help", no_argument, NULL, OPT_HELP },
        { "compare_timeout", required_argument, NULL, OPT_COMPARE_TIMEOUT },
        { "compare-timeout", required_argument, NULL, OPT_COMPARE_TIMEOUT },
        { "expired_scan_cycle", required_argument, NULL, OPT_SCAN_CYCLE },
        { "expired-scan-cycle", required_argument, NULL, OPT_SCAN_CYCLE },
        { "max_queue_size", required_argument, NULL, OPT_MAX_QUEUE },
        { "max-queue-size", required_argument, NULL, OPT_MAX_QUEUE },
        { "max-conns", required_argument, NULL, OPT_MAX_CONNS },
        { "checkpoint-ms", required_argument, NULL, OPT_CHECKPOINT_MS },
        { "checkpoint-times", required_argument, NULL, OPT_CHECKPOINT_TIMES },
        { "vnet-hdr", optional_argument, NULL, OPT_VNET_HDR },
        { NULL, 0, NULL, 0 },
    };
    struct replay_options opt;
    replay_options_default(&opt);
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:jh", longopts, NULL)) != -1) {
        if (c == OPT_HELP) {
            replay_usage(stdout);
            return 0;
        }
        if (apply_replay_option(c, &opt, &json) != 0) {
            replay_usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 2) {
        fputs("colo-proxy replay: give exactly two pcaps, the primary's then the secondary's\n",
              stderr);
        replay_usage(stderr);
        return 2;
    }
    opt.primary_path = argv[optind];
    opt.secondary_path = argv[optind + 1];
    struct replay_result res;
    char err[512];
    if (replay_run(&opt, &res, err, sizeof(err)) != 0) {
        fprintf(stderr, "colo-proxy replay: %s\n", err);
        replay_result_free(&res);
        return 2;
    }
    if (json)
        replay_report_json(&res, &opt, stdout);
    else
        replay_report_text(&res, &opt, stdout);
    replay_result_free(&res);
    return 0;
}

static void usage(FILE *out)
{
    fputs("usage: colo-proxy COMMAND [options]\n"
          "commands:\n"
          "  replay PRIMARY.pcap SECONDARY.pcap   compare a PVM and an SVM trace offline\n"
          "  help                                 this text\n"
          "Run 'colo-proxy COMMAND --help' for a command's options.\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "replay") == 0)
        return cmd_replay(argc - 1, argv + 1);
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "colo-proxy: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
