/*
 * cmd_run.c — `colo-proxy run`: the data plane of one host, primary or secondary.
 *
 *   colo-proxy run [EAL options] -- --role primary --client-port P --pvm-port P --link-port P
 *   colo-proxy run [EAL options] -- --role secondary --link-port P --svm-port P
 *
 * Owns: EAL start-up and clean-up, the run options, signals (SIGINT/SIGTERM
 * stop the loop, which drains by the shutdown policy; SIGPIPE is ignored, as
 * vhost and virtio_user need), and the order of start and stop: pipeline,
 * control thread, loop on the main lcore, control stop, pipeline destroy.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include "colo/checkpoint_ctl.h"
#include "colo/cli.h"
#include "colo/config_file.h"
#include "colo/control.h"
#include "colo/divergence_report.h"
#include "colo/log.h"
#include "colo/ops_server.h"
#include "colo/pipeline.h"

enum {
    OPT_ROLE = 400,
    OPT_CLIENT_PORT,
    OPT_PVM_PORT,
    OPT_LINK_PORT,
    OPT_SVM_PORT,
    OPT_CONTROL,
    OPT_VM_MAC,
    OPT_MBUFS,
    OPT_IDLE_SLEEP,
    OPT_SHUTDOWN_POLICY,
    OPT_SHUTDOWN_TIMEOUT,
    OPT_QMP,
    OPT_CHECKPOINT_PERIOD,
    OPT_HEARTBEAT,
    OPT_HEARTBEAT_MISSES,
    OPT_NO_CLIENT_HEARTBEAT,
    OPT_VM_DOWN,
    OPT_METRICS,
    OPT_REPORTS,
    OPT_REPORTS_RATE,
    OPT_HELP,
};

static void run_usage(FILE *out)
{
    fputs("usage: colo-proxy run [EAL options] -- --role primary|secondary [options]\n"
          "ports (a DPDK device name given with --vdev, e.g. net_af_packet0, or a port number):\n"
          "  --client-port P     primary: the clients' side; secondary (optional): the same client\n"
          "                      network, served only after a takeover\n"
          "  --pvm-port P        primary: the PVM's NIC (e.g. net_vhost0 for a vhost-user NIC)\n"
          "  --link-port P       both: the link between the two hosts\n"
          "  --svm-port P        secondary: the SVM's NIC\n"
          "options:\n"
          "  --control PATH      unix socket for colo-proxy status and line commands: checkpoint-done,\n"
          "                      stats, shutdown\n"
          "  --metrics [ADDR:]PORT  serve Prometheus metrics over HTTP (default address 127.0.0.1)\n"
          "  --divergence-reports DIR  primary: a report per divergence there (colo-proxy explain reads it)\n"
          "  --divergence-reports-per-minute N  log and report at most N divergences a minute (default 60)\n"
          "  --qmp ADDR          this host's QEMU's QMP (unix:/path or tcp:host:port): the primary asks\n"
          "                      for checkpoints there, and QEMU's STOP/RESUME ends one (held packets\n"
          "                      released, offsets reset); beside the VM port's down/up in status\n"
          "  --checkpoint-period-ms N  re-applied as x-checkpoint-delay (default 20000)\n"
          "  --heartbeat-ms N    heartbeat to the peer colo-proxy on the link (default 20; 0: off)\n"
          "  --heartbeat-misses N  intervals without one before the peer is down (default 4)\n"
          "  --no-client-heartbeat  primary: do not also beat on the client side (the secondary's\n"
          "                      split-brain guard then relies on the link alone)\n"
          "  --vm-down-ms N      the VM's port down this long (after it was up once) is a dead VM, not a\n"
          "                      checkpoint: this host falls silent so its peer takes over or goes on\n"
          "                      alone (default 5000; 0: never)\n"
          "  --vm-mac MAC        only frames to (client side) / from (VM side) this MAC are compared\n"
          "  --mbufs N           packet buffers (default 16384)\n"
          "  --idle-sleep-us N   sleep N us when a poll finds nothing (default 0: busy-poll)\n"
          "  --shutdown-policy release|checkpoint   on SIGINT/SIGTERM/shutdown (default release)\n"
          "  --shutdown-timeout-ms N  how long 'checkpoint' waits (default 5000)\n"
          CLI_COMPARE_HELP
          CLI_COMMON_HELP
          "config file: [run] takes these options' names as keys, and eal = '...' for the EAL options\n",
          out);
}

static void on_signal(int sig)
{
    (void)sig;
    pipeline_request_stop();
}

struct run_options {
    bool role_given;
    struct pipeline_config pipeline;
    struct ops_server_config ops;
    const char *divergence_reports;
    struct checkpoint_ctl_config qmp;
};

static int apply_option(void *ctx, int c, const char *arg)
{
    struct run_options *o = ctx;
    struct pipeline_config *cfg = &o->pipeline;
    switch (c) {
    case OPT_ROLE:
        if (strcmp(arg, "primary") == 0)
            cfg->role = ROLE_PRIMARY;
        else if (strcmp(arg, "secondary") == 0)
            cfg->role = ROLE_SECONDARY;
        else
            return cli_error("--role '%s': use primary or secondary", arg), -1;
        o->role_given = true;
        return 0;
    case OPT_CLIENT_PORT: cfg->port_name[PORT_CLIENT] = arg; return 0;
    case OPT_PVM_PORT: cfg->port_name[PORT_PVM] = arg; return 0;
    case OPT_LINK_PORT: cfg->port_name[PORT_LINK] = arg; return 0;
    case OPT_SVM_PORT: cfg->port_name[PORT_SVM] = arg; return 0;
    case OPT_CONTROL: o->ops.control_path = arg; return 0;
    case OPT_METRICS: o->ops.metrics_addr = arg; return 0;
    case OPT_REPORTS: o->divergence_reports = arg; return 0;
    case OPT_REPORTS_RATE:
        return cli_parse_u32("divergence-reports-per-minute", arg, 0, &cfg->divergence_reports_per_minute);
    case OPT_QMP: o->qmp.qmp = arg; return 0;
    case OPT_CHECKPOINT_PERIOD: return cli_parse_u32("checkpoint-period-ms", arg, 1, &o->qmp.period_ms);
    case OPT_HEARTBEAT: return cli_parse_u32("heartbeat-ms", arg, 0, &cfg->heartbeat_ms);
    case OPT_HEARTBEAT_MISSES: return cli_parse_u32("heartbeat-misses", arg, 1, &cfg->heartbeat_misses);
    case OPT_NO_CLIENT_HEARTBEAT: cfg->client_heartbeat = false; return 0;
    case OPT_VM_DOWN: return cli_parse_u32("vm-down-ms", arg, 0, &cfg->vm_down_ms);
    case OPT_VM_MAC:
        cfg->vm_mac_set = true;
        return cli_parse_mac("vm-mac", arg, cfg->vm_mac);
    case OPT_MBUFS: return cli_parse_u32("mbufs", arg, 1024, &cfg->nb_mbufs);
    case OPT_IDLE_SLEEP: return cli_parse_u32("idle-sleep-us", arg, 0, &cfg->idle_sleep_us);
    case OPT_SHUTDOWN_POLICY:
        if (strcmp(arg, "release") == 0)
            cfg->shutdown_policy = SHUTDOWN_RELEASE;
        else if (strcmp(arg, "checkpoint") == 0)
            cfg->shutdown_policy = SHUTDOWN_CHECKPOINT;
        else
            return cli_error("--shutdown-policy '%s': use release or checkpoint", arg), -1;
        return 0;
    case OPT_SHUTDOWN_TIMEOUT:
        return cli_parse_u32("shutdown-timeout-ms", arg, 0, &cfg->shutdown_timeout_ms);
    case OPT_HELP: return CLI_HELP;
    default:
        return cli_compare_option(c, arg, &cfg->compare) == 0 ? 0 : -1;
    }
}

static const struct option run_longopts[] = {
    { "role", required_argument, NULL, OPT_ROLE },
    { "client-port", required_argument, NULL, OPT_CLIENT_PORT },
    { "pvm-port", required_argument, NULL, OPT_PVM_PORT },
    { "link-port", required_argument, NULL, OPT_LINK_PORT },
    { "svm-port", required_argument, NULL, OPT_SVM_PORT },
    { "control", required_argument, NULL, OPT_CONTROL },
    { "metrics", required_argument, NULL, OPT_METRICS },
    { "divergence-reports", required_argument, NULL, OPT_REPORTS },
    { "divergence-reports-per-minute", required_argument, NULL, OPT_REPORTS_RATE },
    { "vm-mac", required_argument, NULL, OPT_VM_MAC },
    { "mbufs", required_argument, NULL, OPT_MBUFS },
    { "idle-sleep-us", required_argument, NULL, OPT_IDLE_SLEEP },
    { "shutdown-policy", required_argument, NULL, OPT_SHUTDOWN_POLICY },
    { "shutdown-timeout-ms", required_argument, NULL, OPT_SHUTDOWN_TIMEOUT },
    { "qmp", required_argument, NULL, OPT_QMP },
    { "checkpoint-period-ms", required_argument, NULL, OPT_CHECKPOINT_PERIOD },
    { "heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT },
    { "heartbeat-misses", required_argument, NULL, OPT_HEARTBEAT_MISSES },
    { "no-client-heartbeat", no_argument, NULL, OPT_NO_CLIENT_HEARTBEAT },
    { "vm-down-ms", required_argument, NULL, OPT_VM_DOWN },
    { "help", no_argument, NULL, OPT_HELP },
    CLI_COMPARE_LONGOPTS,
    CLI_COMMON_LONGOPTS,
    { NULL, 0, NULL, 0 },
};

/* The config file's key for the EAL's options (one string, split as a shell would). */
static const char *const file_only_keys[] = { "eal", NULL };

static bool is_ours(const char *word) { return strcmp(word, "--check") == 0 || strncmp(word, "--config", 8) == 0; }

/*
 * Splits argv into the EAL's words (the config file's `eal`, then those before
 * "--") and the run options' (those after "--"; with a config file and no "--",
 * all of them); --config and --check may stand anywhere and always go to the
 * run options. -1 with a line when `eal`
 * cannot be split.
 */
static int split_argv(int argc, char **argv, GPtrArray *eal, GPtrArray *run, char ***eal_words)
{
    const char *config = NULL;
    bool check = false;
    for (int i = 1; i < argc; i++) {
        check |= strcmp(argv[i], "--check") == 0;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            config = argv[i] + 9;
    }
    g_ptr_array_add(eal, argv[0]);
    g_ptr_array_add(run, argv[0]);
    if (config) {
        g_autofree char *words = config_file_string(config, "run", "eal");
        GError *e = NULL;
        int n;
        if (words && !g_shell_parse_argv(words, &n, eal_words, &e)) {
            cli_error("config '%s' [run]: eal = '%s': %s", config, words, e->message);
            g_error_free(e);
            return -1;
        }
        for (int i = 0; *eal_words && (*eal_words)[i]; i++)
            g_ptr_array_add(eal, (*eal_words)[i]);
        g_ptr_array_add(run, "--config");
        g_ptr_array_add(run, (char *)config);
    }
    if (check)
        g_ptr_array_add(run, "--check");
    bool has_separator = false;
    for (int i = 1; i < argc; i++)
        has_separator |= strcmp(argv[i], "--") == 0;
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0 && (has_separator || !config); i++) {
        if (strcmp(argv[i], "--config") == 0)
            i++;
        else if (!is_ours(argv[i]))
            g_ptr_array_add(eal, argv[i]);
    }
    for (i += has_separator; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0)
            i++;
        else if (!is_ours(argv[i]))
            g_ptr_array_add(run, argv[i]);
    }
    g_ptr_array_add(eal, NULL);
    g_ptr_array_add(run, NULL);
    return 0;
}

/* What can be checked before EAL starts; -1 with why. */
static int check_run_options(const struct run_options *o, char *err, size_t errlen)
{
    if (!o->role_given) {
        snprintf(err, errlen, "say which host this is with --role primary or --role secondary");
        return -1;
    }
    if (ops_server_check_config(&o->ops, err, errlen) != 0)
        return -1;
    if (o->qmp.qmp && checkpoint_ctl_check_address(o->qmp.qmp, err, errlen) != 0)
        return -1;
    if (o->divergence_reports && divergence_report_check_dir(o->divergence_reports, err, errlen) != 0)
        return -1;
    return pipeline_check_config(&o->pipeline, err, errlen);
}

static const struct cli_spec run_spec = { "run", "", run_longopts, file_only_keys, apply_option, false };

static void run_options_default(struct run_options *o)
{
    memset(o, 0, sizeof(*o));
    pipeline_config_default(&o->pipeline);
    checkpoint_ctl_config_default(&o->qmp);
}

/* 0 and a config to run; 1 when done (help, check); 2 on a bad option. */
static int parse_run_options(GPtrArray *run, struct run_options *o, struct cli_parsed *parsed)
{
    if (cli_parse(&run_spec, (int)run->len - 1, (char **)run->pdata, o, parsed) != 0) {
        cli_usage_hint("run");
        return 2;
    }
    if (parsed->help) {
        run_usage(stdout);
        return 1;
    }
    char err[512] = "";
    int bad = check_run_options(o, err, sizeof(err));
    if (parsed->check)
        return cli_report_check("run", parsed, bad, err) == 0 ? 1 : 2;
    if (bad) {
        fprintf(stderr, "%s: %s\n", log_who(), err);
        return 2;
    }
    return 0;
}

/* What a SIGHUP re-reads: the same command line and file, so the command line still wins. */
struct run_reload {
    int argc;
    char **argv;
    GPtrArray *kept; /* every parse's words: what was applied may point into any of them */
};

static void free_parsed(gpointer p)
{
    cli_parsed_free(p);
    g_free(p);
}

static int reload(void *ctx, struct pipeline_reload *out, const char **divergence_reports)
{
    struct run_reload *r = ctx;
    GPtrArray *eal = g_ptr_array_new(), *run = g_ptr_array_new();
    char **eal_words = NULL;
    struct run_options o;
    run_options_default(&o);
    struct cli_parsed *parsed = g_new0(struct cli_parsed, 1);
    char err[512];
    cli_errors_to_log(true);
    int rc = split_argv(r->argc, r->argv, eal, run, &eal_words) != 0 ? -1
             : cli_parse(&run_spec, (int)run->len - 1, (char **)run->pdata, &o, parsed);
    cli_errors_to_log(false);
    if (rc != 0)
        log_msg(LOG_WARNING, "reload failed (the line above says why); the running configuration stays");
    else if ((rc = check_run_options(&o, err, sizeof(err))) != 0)
        log_msg(LOG_WARNING, "reload refused: %s; the running configuration stays", err);
    if (rc == 0) {
        out->bypass = o.pipeline.compare.bypass;
        out->divergence_reports_per_minute = o.pipeline.divergence_reports_per_minute;
        *divergence_reports = o.divergence_reports;
    }
    g_ptr_array_add(r->kept, parsed);
    g_strfreev(eal_words);
    g_ptr_array_free(eal, TRUE);
    g_ptr_array_free(run, TRUE);
    return rc;
}

/* One line: what the control thread serves and waits for (the data plane says which lcore it runs on). */
static void log_start(const struct run_options *o)
{
    g_autoptr(GString) line = g_string_new(NULL);
    g_string_printf(line, "started as the %s", o->pipeline.role == ROLE_PRIMARY ? "primary" : "secondary");
    ops_server_describe(&o->ops, line);
    if (o->qmp.qmp && o->pipeline.role == ROLE_SECONDARY)
        g_string_append_printf(line, "; the secondary QEMU's QMP at %s: its STOP/RESUME resets the offsets and is "
                               "shown beside the SVM port's down/up", o->qmp.qmp);
    else if (o->qmp.qmp)
        g_string_append_printf(line, "; checkpoints asked for via QMP at %s (waiting for QEMU's monitor)", o->qmp.qmp);
    else if (o->pipeline.role == ROLE_PRIMARY)
        g_string_append(line, "; no --qmp: checkpoint requests go to the control socket as events only");
    log_msg(LOG_INFO, "%s", line->str);
}

static int run_data_plane(struct run_options *o, int argc, char **argv)
{
    char err[512];
    struct pipeline *p = pipeline_create(&o->pipeline, err, sizeof(err));
    struct run_reload again = { argc, argv, g_ptr_array_new_with_free_func(free_parsed) };
    struct control_config cc = { &o->ops, o->qmp.qmp ? &o->qmp : NULL, o->divergence_reports, reload, &again };
    struct control *ctl = p ? control_start(&cc, pipeline_ring_to_dataplane(p), pipeline_ring_from_dataplane(p), err,
                                            sizeof(err))
                            : NULL;
    int rc = 2;
    if (!p || !ctl) {
        fprintf(stderr, "%s: %s\n", log_who(), err);
    } else {
        log_start(o);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        pipeline_run(p);
        control_stop(ctl);
        rc = 0;
    }
    pipeline_destroy(p);
    g_ptr_array_free(again.kept, TRUE);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            run_usage(stdout);
            return 0;
        }
    }
    GPtrArray *eal = g_ptr_array_new(), *run = g_ptr_array_new();
    char **eal_words = NULL;
    struct run_options o;
    run_options_default(&o);
    struct cli_parsed parsed = { .config_words = NULL };
    int rc = split_argv(argc, argv, eal, run, &eal_words) != 0 ? 2 : parse_run_options(run, &o, &parsed);
    if (rc == 0) {
        signal(SIGPIPE, SIG_IGN);
        if (rte_eal_init((int)eal->len - 1, (char **)eal->pdata) < 0) {
            fprintf(stderr, "colo-proxy run: DPDK EAL failed to start: %s (without hugepages, pass --no-huge -m 256)\n",
                    rte_strerror(rte_errno));
            rc = 2;
        } else {
            rc = run_data_plane(&o, argc, argv);
            rte_eal_cleanup();
        }
    }
    cli_parsed_free(&parsed);
    g_strfreev(eal_words);
    g_ptr_array_free(eal, TRUE);
    g_ptr_array_free(run, TRUE);
    return rc == 1 ? 0 : rc;
}
