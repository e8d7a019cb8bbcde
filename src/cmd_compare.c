/*
 * cmd_compare.c — `colo-proxy compare`: socket mode, in place of QEMU's colo-compare.
 *
 * QEMU's object and its colo-proxy spelling:
 *   -object colo-compare,id=comp0,primary_in=compare0-0,secondary_in=compare1,
 *           outdev=compare_out0,iothread=iothread1[,vnet_hdr_support=on]
 *   colo-proxy compare --primary_in tcp:127.0.0.1:9001 --secondary_in tcp:0.0.0.0:9004,server
 *           --outdev tcp:127.0.0.1:9005 [--vnet_hdr_support] --qmp unix:/run/qemu-proxy.qmp
 * with the same knobs (compare_timeout, expired_scan_cycle, max_queue_size). See docs/qemu.md.
 */
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "colo/chardev_endpoint.h"
#include "colo/cli.h"
#include "colo/log.h"
#include "colo/ops_server.h"
#include "colo/socket_mode.h"

enum {
    OPT_PRIMARY_IN = 500,
    OPT_SECONDARY_IN,
    OPT_OUTDEV,
    OPT_VNET,
    OPT_NOTIFY,
    OPT_QMP,
    OPT_PERIOD,
    OPT_SECONDARY_LOST,
    OPT_CONTROL,
    OPT_METRICS,
    OPT_REPORTS,
    OPT_REPORTS_RATE,
    OPT_HELP,
};

static void compare_usage(FILE *out)
{
    fputs("usage: colo-proxy compare --primary_in EP --secondary_in EP --outdev EP [options]\n"
          "  EP is tcp:HOST:PORT or unix:PATH (connect, retried), with ,server to listen\n"
          "options:\n"
          "  --vnet_hdr_support[=on|off]  records carry a vnet header length (QEMU's spelling, =on, works too)\n"
          "  --qmp ADDR                  the primary QEMU's QMP (unix:/path or tcp:host:port)\n"
          "  --notify_dev EP             the Xen COLO frame's channel (QEMU's notify_dev)\n"
          "  --checkpoint-period-ms N    re-applied as x-checkpoint-delay (default 20000)\n"
          "  --secondary-lost-ms N       secondary_in without a peer this long (after it had one) means the\n"
          "                              secondary is gone: release what is held, pass PVM frames straight\n"
          "                              (default 5000; 0: only QMP's COLO_EXIT means failover)\n"
          "  --divergence-reports DIR    write a report per divergence there (colo-proxy explain reads it)\n"
          "  --divergence-reports-per-minute N  log and report at most N divergences a minute (default 60)\n"
          "  --control PATH              unix socket for colo-proxy status and line commands\n"
          "  --metrics [ADDR:]PORT       serve Prometheus metrics over HTTP (default address 127.0.0.1)\n"
          CLI_COMPARE_HELP
          CLI_COMMON_HELP,
          out);
}

static int apply_option(void *ctx, int c, const char *arg)
{
    struct socket_mode_config *cfg = ctx;
    switch (c) {
    case OPT_PRIMARY_IN: cfg->endpoint[SOCK_PRIMARY_IN] = arg; return 0;
    case OPT_SECONDARY_IN: cfg->endpoint[SOCK_SECONDARY_IN] = arg; return 0;
    case OPT_OUTDEV: cfg->endpoint[SOCK_OUTDEV] = arg; return 0;
    case OPT_VNET: return cli_parse_on_off("vnet_hdr_support", arg, &cfg->vnet_hdr_support);
    case OPT_NOTIFY: cfg->endpoint[SOCK_NOTIFY_DEV] = arg; return 0;
    case OPT_QMP: cfg->qmp = arg; return 0;
    case OPT_PERIOD: return cli_parse_u32("checkpoint-period-ms", arg, 1, &cfg->checkpoint_period_ms);
    case OPT_SECONDARY_LOST: return cli_parse_u32("secondary-lost-ms", arg, 0, &cfg->secondary_lost_ms);
    case OPT_REPORTS: cfg->divergence_reports = arg; return 0;
    case OPT_REPORTS_RATE:
        return cli_parse_u32("divergence-reports-per-minute", arg, 0, &cfg->divergence_reports_per_minute);
    case OPT_CONTROL: cfg->control = arg; return 0;
    case OPT_METRICS: cfg->metrics_addr = arg; return 0;
    case OPT_HELP: return CLI_HELP;
    default: return cli_compare_option(c, arg, &cfg->compare) == 0 ? 0 : -1;
    }
}

/* What a SIGHUP re-reads: the same command line, so the file changes and the command line still wins. */
struct compare_reload {
    int argc;
    char **argv;
    const struct cli_spec *spec;
    GPtrArray *kept; /* every parse's words: the running configuration may point into any of them */
};

static void reload(void *ctx, struct socket_mode *sm)
{
    struct compare_reload *r = ctx;
    struct socket_mode_config fresh;
    socket_mode_config_default(&fresh);
    struct cli_parsed *parsed = g_new0(struct cli_parsed, 1);
    char err[512];
    cli_errors_to_log(true);
    int bad = cli_parse(r->spec, r->argc, r->argv, &fresh, parsed);
    cli_errors_to_log(false);
    if (bad)
        log_msg(LOG_WARNING, "reload failed (the line above says why); the running configuration stays");
    else if (socket_mode_reload(sm, &fresh, err, sizeof(err)) != 0)
        log_msg(LOG_WARNING, "reload refused: %s; the running configuration stays", err);
    g_ptr_array_add(r->kept, parsed);
}

#define NO_CHECKPOINT_CHANNEL                                                                                   \
    "neither --qmp nor --notify_dev is given: colo-proxy can never ask for a checkpoint, so packets held "     \
    "after a divergence wait for QEMU's own periodic one; give --qmp unix:PATH (the primary QEMU's monitor)"

/* Everything a start would open: endpoints (and their socket directories), reports, QMP, control, metrics. */
static int check_compare(const struct socket_mode_config *cfg, char *err, size_t errlen)
{
    struct ops_server_config oc = { cfg->control, cfg->metrics_addr };
    return socket_mode_check_config(cfg, err, errlen) != 0 || ops_server_check_config(&oc, err, errlen) != 0 ? -1
                                                                                                              : 0;
}

static bool has_checkpoint_channel(const struct socket_mode_config *cfg)
{
    return cfg->qmp || cfg->endpoint[SOCK_NOTIFY_DEV];
}

/* One line: what it listens on, connects to, and waits for. */
static void log_start(const struct socket_mode_config *cfg)
{
    static const char *const names[SOCK_ROLE_COUNT] = { "primary_in", "secondary_in", "outdev", "notify_dev" };
    g_autoptr(GString) line = g_string_new("started: ");
    chardev_endpoints_describe(names, cfg->endpoint, SOCK_ROLE_COUNT, line);
    g_string_append(line, "; checkpoint channel: ");
    if (cfg->qmp)
        g_string_append_printf(line, "QMP at %s%s", cfg->qmp, cfg->endpoint[SOCK_NOTIFY_DEV] ? " and notify_dev" : "");
    else
        g_string_append(line, cfg->endpoint[SOCK_NOTIFY_DEV] ? "notify_dev" : "none");
    struct ops_server_config oc = { cfg->control, cfg->metrics_addr };
    ops_server_describe(&oc, line);
    g_string_append_printf(line, "; waiting for QEMU's chardevs%s to connect", cfg->qmp ? " and its monitor" : "");
    log_msg(LOG_INFO, "%s", line->str);
}

static void free_parsed(gpointer p)
{
    cli_parsed_free(p);
    g_free(p);
}

int cmd_compare(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "primary_in", required_argument, NULL, OPT_PRIMARY_IN },
        { "primary-in", required_argument, NULL, OPT_PRIMARY_IN },
        { "secondary_in", required_argument, NULL, OPT_SECONDARY_IN },
        { "secondary-in", required_argument, NULL, OPT_SECONDARY_IN },
        { "outdev", required_argument, NULL, OPT_OUTDEV },
        { "vnet_hdr_support", optional_argument, NULL, OPT_VNET },
        { "vnet-hdr-support", optional_argument, NULL, OPT_VNET },
        { "qmp", required_argument, NULL, OPT_QMP },
        { "notify_dev", required_argument, NULL, OPT_NOTIFY },
        { "notify-dev", required_argument, NULL, OPT_NOTIFY },
        { "checkpoint-period-ms", required_argument, NULL, OPT_PERIOD },
        { "secondary-lost-ms", required_argument, NULL, OPT_SECONDARY_LOST },
        { "divergence-reports", required_argument, NULL, OPT_REPORTS },
        { "divergence-reports-per-minute", required_argument, NULL, OPT_REPORTS_RATE },
        { "control", required_argument, NULL, OPT_CONTROL },
        { "metrics", required_argument, NULL, OPT_METRICS },
        { "help", no_argument, NULL, OPT_HELP },
        CLI_COMPARE_LONGOPTS,
        CLI_COMMON_LONGOPTS,
        { NULL, 0, NULL, 0 },
    };
    static const struct cli_spec spec = { "compare", "h", longopts, NULL, apply_option, false };
    struct socket_mode_config cfg;
    socket_mode_config_default(&cfg);
    struct cli_parsed parsed;
    int rc = 2;
    char err[512];
    if (cli_parse(&spec, argc, argv, &cfg, &parsed) != 0) {
        cli_usage_hint("compare");
    } else if (parsed.help) {
        compare_usage(stdout);
        rc = 0;
    } else if (parsed.check) {
        int bad = check_compare(&cfg, err, sizeof(err));
        if (!bad && !has_checkpoint_channel(&cfg))
            fprintf(stderr, "%s: warning: %s\n", log_who(), NO_CHECKPOINT_CHANNEL);
        rc = cli_report_check("compare", &parsed, bad, err);
    } else if (check_compare(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", log_who(), err);
    } else {
        struct compare_reload r = { argc, argv, &spec, g_ptr_array_new_with_free_func(free_parsed) };
        cfg.reload = reload;
        cfg.reload_ctx = &r;
        struct socket_mode *sm = socket_mode_create(&cfg, err, sizeof(err));
        if (!sm) {
            fprintf(stderr, "%s: %s\n", log_who(), err);
        } else {
            log_start(&cfg);
            if (!has_checkpoint_channel(&cfg))
                log_msg(LOG_WARNING, "%s", NO_CHECKPOINT_CHANNEL);
            rc = socket_mode_run(sm);
            socket_mode_destroy(sm);
        }
        g_ptr_array_free(r.kept, TRUE);
    }
    cli_parsed_free(&parsed);
    return rc;
}
