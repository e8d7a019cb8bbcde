/*
 * cmd_replay.c — `colo-proxy replay`: options, running the replay, printing the report.
 *
 * Option names follow QEMU's colo-compare where QEMU has one (compare_timeout,
 * expired_scan_cycle, max_queue_size), with '-' accepted for '_'. Exit codes: 0
 * the replay ran (divergences are results), 2 usage or input errors.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "colo/cli.h"
#include "colo/replay.h"

enum {
    OPT_OUT = 'o',
    OPT_JSON = 'j',
    OPT_HELP = 'h',
    OPT_CHECKPOINT_MS = 256,
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
          CLI_COMPARE_HELP
          "  --checkpoint-ms N|none      a requested checkpoint completes N ms later (default 90)\n"
          "  --checkpoint-times FILE     recorded checkpoints: lines '<begin_s> <end_s>', or a QMP\n"
          "                              event log (each STOP then RESUME is a checkpoint)\n"
          "  --vnet-hdr[=LEN]            frames start with a virtio-net header (default 12)\n",
          out);
}

static int apply_replay_option(int c, struct replay_options *opt, bool *json)
{
    switch (c) {
    case OPT_OUT: opt->output_path = optarg; return 0;
    case OPT_JSON: *json = true; return 0;
    case OPT_CHECKPOINT_MS:
        if (strcmp(optarg, "none") == 0) {
            opt->checkpoint_ms = REPLAY_NO_MODEL;
            return 0;
        }
        return cli_parse_u32("checkpoint-ms", optarg, 0, &opt->checkpoint_ms);
    case OPT_CHECKPOINT_TIMES: opt->checkpoint_times_path = optarg; return 0;
    case OPT_VNET_HDR:
        if (!optarg) {
            opt->vnet_hdr_len = 12;
            return 0;
        }
        return cli_parse_u32("vnet-hdr", optarg, 0, &opt->vnet_hdr_len);
    default: return cli_compare_option(c, optarg, &opt->compare) == 0 ? 0 : -1;
    }
}

int cmd_replay(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "out", required_argument, NULL, OPT_OUT },
        { "json", no_argument, NULL, OPT_JSON },
        { "help", no_argument, NULL, OPT_HELP },
        CLI_COMPARE_LONGOPTS,
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
