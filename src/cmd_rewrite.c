/*
 * cmd_rewrite.c — `colo-proxy rewrite`: socket mode on the secondary, in place of
 * QEMU's filter-rewriter.
 *
 * COLO-FT's secondary and its colo-proxy spelling:
 *   -chardev socket,id=red0,host=$primary_ip,port=9003,reconnect=1      -> port=9013 on this host
 *   -chardev socket,id=red1,host=$primary_ip,port=9004,reconnect=1      -> port=9014 on this host
 *   -object filter-rewriter,id=rew0,netdev=hn0,queue=all                -> dropped
 *   colo-proxy rewrite --mirror_in tcp:$primary_ip:9003 --to_svm tcp:127.0.0.1:9013,server
 *           --from_svm tcp:127.0.0.1:9014,server --to_primary tcp:$primary_ip:9004
 *           --qmp unix:/run/qemu-secondary-proxy.qmp
 * See docs/qemu.md.
 */
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "colo/chardev_endpoint.h"
#include "colo/cli.h"
#include "colo/log.h"
#include "colo/ops_server.h"
#include "colo/socket_rewrite.h"

enum {
    OPT_MIRROR_IN = 600,
    OPT_TO_SVM,
    OPT_FROM_SVM,
    OPT_TO_PRIMARY,
    OPT_NET_IN,
    OPT_NET_OUT,
    OPT_VNET,
    OPT_QMP,
    OPT_MAX_CONNS,
    OPT_CONTROL,
    OPT_METRICS,
    OPT_HELP,
};

static void rewrite_usage(FILE *out)
{
    fputs("usage: colo-proxy rewrite --mirror_in EP --to_svm EP --from_svm EP --to_primary EP [options]\n"
          "  EP is tcp:HOST:PORT or unix:PATH (connect, retried), with ,server to listen\n"
          "  --mirror_in EP         the primary's filter-mirror socket (client frames)\n"
          "  --to_svm EP            where the secondary's filter-redirector (queue=tx, indev) connects\n"
          "  --from_svm EP          where the secondary's filter-redirector (queue=rx, outdev) connects\n"
          "  --to_primary EP        the primary's compare (its secondary_in)\n"
          "  --net_in EP            where a filter-redirector (queue=tx, outdev) before f1 connects: this\n"
          "                         host's network, the clients' side once the SVM takes over (with --net_out)\n"
          "  --net_out EP           where a filter-redirector (queue=rx, indev) between f1 and f2 connects:\n"
          "                         SVM frames to this host's network once the SVM takes over (with --net_in)\n"
          "options:\n"
          "  --vnet_hdr_support[=on|off]  records carry a vnet header length (QEMU's spelling, =on, works too)\n"
          "  --qmp ADDR             the secondary QEMU's QMP: a checkpoint resets every offset, COLO_EXIT\n"
          "                         is the takeover\n"
          "  --max-conns N          connection table size (default 65536)\n"
          "  --control PATH         unix socket for colo-proxy status and line commands\n"
          "  --metrics [ADDR:]PORT  serve Prometheus metrics over HTTP (default address 127.0.0.1)\n"
          CLI_COMMON_HELP,
          out);
}

static int apply_option(void *ctx, int c, const char *arg)
{
    struct socket_rewrite_config *cfg = ctx;
    switch (c) {
    case OPT_MIRROR_IN: cfg->endpoint[RW_MIRROR_IN] = arg; return 0;
    case OPT_TO_SVM: cfg->endpoint[RW_TO_SVM] = arg; return 0;
    case OPT_FROM_SVM: cfg->endpoint[RW_FROM_SVM] = arg; return 0;
    case OPT_TO_PRIMARY: cfg->endpoint[RW_TO_PRIMARY] = arg; return 0;
    case OPT_NET_IN: cfg->endpoint[RW_NET_IN] = arg; return 0;
    case OPT_NET_OUT: cfg->endpoint[RW_NET_OUT] = arg; return 0;
    case OPT_VNET: return cli_parse_on_off("vnet_hdr_support", arg, &cfg->vnet_hdr_support);
    case OPT_QMP: cfg->qmp = arg; return 0;
    case OPT_MAX_CONNS: return cli_parse_u32("max-conns", arg, 16, &cfg->max_conns);
    case OPT_CONTROL: cfg->control = arg; return 0;
    case OPT_METRICS: cfg->metrics_addr = arg; return 0;
    case OPT_HELP: return CLI_HELP;
    default: return -1;
    }
}

/* Everything a start would open: endpoints (and their socket directories), QMP, control, metrics. */
static int check_rewrite(const struct socket_rewrite_config *cfg, char *err, size_t errlen)
{
    struct ops_server_config oc = { cfg->control, cfg->metrics_addr };
    return socket_rewrite_check_config(cfg, err, errlen) != 0 || ops_server_check_config(&oc, err, errlen) != 0
               ? -1
               : 0;
}

/* One line: what it listens on, connects to, and waits for. */
static void log_start(const struct socket_rewrite_config *cfg)
{
    static const char *const names[RW_ROLE_COUNT] = { "mirror_in", "to_svm", "from_svm", "to_primary", "net_in",
                                                      "net_out" };
    g_autoptr(GString) line = g_string_new("started: ");
    chardev_endpoints_describe(names, cfg->endpoint, RW_ROLE_COUNT, line);
    if (cfg->qmp)
        g_string_append_printf(line, "; checkpoints seen via QMP at %s", cfg->qmp);
    struct ops_server_config oc = { cfg->control, cfg->metrics_addr };
    ops_server_describe(&oc, line);
    g_string_append_printf(line, "; waiting for the chardevs%s to connect", cfg->qmp ? " and QEMU's monitor" : "");
    log_msg(LOG_INFO, "%s", line->str);
}

int cmd_rewrite(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "mirror_in", required_argument, NULL, OPT_MIRROR_IN },
        { "to_svm", required_argument, NULL, OPT_TO_SVM },
        { "from_svm", required_argument, NULL, OPT_FROM_SVM },
        { "to_primary", required_argument, NULL, OPT_TO_PRIMARY },
        { "net_in", required_argument, NULL, OPT_NET_IN },
        { "net_out", required_argument, NULL, OPT_NET_OUT },
        { "vnet_hdr_support", optional_argument, NULL, OPT_VNET },
        { "vnet-hdr-support", optional_argument, NULL, OPT_VNET },
        { "qmp", required_argument, NULL, OPT_QMP },
        { "max-conns", required_argument, NULL, OPT_MAX_CONNS },
        { "control", required_argument, NULL, OPT_CONTROL },
        { "metrics", required_argument, NULL, OPT_METRICS },
        { "help", no_argument, NULL, OPT_HELP },
        CLI_COMMON_LONGOPTS,
        { NULL, 0, NULL, 0 },
    };
    static const struct cli_spec spec = { "rewrite", "h", longopts, NULL, apply_option, false };
    struct socket_rewrite_config cfg;
    socket_rewrite_config_default(&cfg);
    struct cli_parsed parsed;
    int rc = 2;
    char err[512];
    if (cli_parse(&spec, argc, argv, &cfg, &parsed) != 0) {
        cli_usage_hint("rewrite");
    } else if (parsed.help) {
        rewrite_usage(stdout);
        rc = 0;
    } else if (parsed.check) {
        rc = cli_report_check("rewrite", &parsed, check_rewrite(&cfg, err, sizeof(err)), err);
    } else if (check_rewrite(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", log_who(), err);
    } else {
        struct socket_rewrite *sr = socket_rewrite_create(&cfg, err, sizeof(err));
        if (!sr) {
            fprintf(stderr, "%s: %s\n", log_who(), err);
        } else {
            log_start(&cfg);
            rc = socket_rewrite_run(sr);
            socket_rewrite_destroy(sr);
        }
    }
    cli_parsed_free(&parsed);
    return rc;
}
