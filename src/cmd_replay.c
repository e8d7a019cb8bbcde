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
    OPT_REPORTS,
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
          "  --vnet-hdr[=LEN]            frames start with a virtio-net header (default 12)\n"
          "  --reports DIR               write a report per divergence into DIR (colo-proxy explain reads it)\n"
          CLI_COMMON_HELP,
          out);
}

struct replay_cli {
    struct replay_options opt;
    bool json;
};

static int apply_replay_option(void *ctx, int c, const char *arg)
{
    struct replay_cli *r = ctx;
    struct replay_options *opt = &r->opt;
    switch (c) {
    case OPT_OUT: opt->output_path = arg; return 0;
    case OPT_JSON: r->json = true; return 0;
    case OPT_HELP: return CLI_HELP;
    case OPT_CHECKPOINT_MS:
        if (strcmp(arg, "none") == 0) {
            opt->checkpoint_ms = REPLAY_NO_MODEL;
            return 0;
        }
        return cli_parse_u32("checkpoint-ms", arg, 0, &opt->checkpoint_ms);
    case OPT_CHECKPOINT_TIMES: opt->checkpoint_times_path = arg; return 0;
    case OPT_REPORTS: opt->reports_dir = arg; return 0;
    case OPT_VNET_HDR:
        if (!arg) {
            opt->vnet_hdr_len = 12;
            return 0;
        }
        return cli_parse_u32("vnet-hdr", arg, 0, &opt->vnet_hdr_len);
    default: return cli_compare_option(c, arg, &opt->compare) == 0 ? 0 : -1;
    }
}

/* Every path the replay will open, checked before any work (and by --check). */
static int check_paths(const struct replay_options *opt, char *err, size_t errlen)
{
    if (cli_check_path(NULL, opt->primary_path, CLI_PATH_READ, err, errlen) != 0 ||
        cli_check_path(NULL, opt->secondary_path, CLI_PATH_READ, err, errlen) != 0)
        return -1;
    if (opt->checkpoint_times_path &&
        cli_check_path("checkpoint-times", opt->checkpoint_times_path, CLI_PATH_READ, err, errlen) != 0)
        return -1;
    if (opt->output_path && cli_check_path("out", opt->output_path, CLI_PATH_CREATE, err, errlen) != 0)
        return -1;
    return opt->reports_dir ? cli_check_path("reports", opt->reports_dir, CLI_PATH_DIR, err, errlen) : 0;
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
        { "reports", required_argument, NULL, OPT_REPORTS },
        CLI_COMMON_LONGOPTS,
        { NULL, 0, NULL, 0 },
    };
    static const struct cli_spec spec = { "replay", "o:jh", longopts, NULL, apply_replay_option, true };
    struct replay_cli r = { .json = false };
    replay_options_default(&r.opt);
    struct replay_options *opt = &r.opt;
    struct cli_parsed parsed;
    if (cli_parse(&spec, argc, argv, &r, &parsed) != 0) {
        cli_parsed_free(&parsed);
        cli_usage_hint("replay");
        return 2;
    }
    if (parsed.help) {
        cli_parsed_free(&parsed);
        replay_usage(stdout);
        return 0;
    }
    int first = parsed.operands;
    if (argc - first != 2) {
        fputs("colo-proxy replay: give exactly two pcaps, the primary's then the secondary's\n",
              stderr);
        cli_parsed_free(&parsed);
        cli_usage_hint("replay");
        return 2;
    }
    opt->primary_path = argv[first];
    opt->secondary_path = argv[first + 1];
    char err[512];
    int bad = check_paths(opt, err, sizeof(err));
    if (parsed.check || bad) {
        int rc = parsed.check ? cli_report_check("replay", &parsed, bad, err) : 2;
        if (!parsed.check)
            fprintf(stderr, "colo-proxy replay: %s\n", err);
        cli_parsed_free(&parsed);
        return rc;
    }
    struct replay_result res;
    int rc = 0;
    if (replay_run(opt, &res, err, sizeof(err)) != 0) {    } else if (r.json) {
        replay_report_json(&res, opt, stdout);
    } else {
        replay_report_text(&res, opt, stdout);
    }
    replay_result_free(&res);
    cli_parsed_free(&parsed);
    return rc;
}
