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

#include <rte_eal.h>
#include <rte_errno.h>

#include "colo/checkpoint_ctl.h"
#include "colo/cli.h"
#include "colo/control.h"
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
    OPT_METRICS,
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
          "  --qmp ADDR          QEMU's QMP (unix:/path or tcp:host:port): checkpoints are asked\n"
          "                      for there, and QEMU's STOP/RESUME flushes held packets\n"
          "  --checkpoint-period-ms N  re-applied as x-checkpoint-delay (default 20000)\n"
          "  --heartbeat-ms N    heartbeat to the peer colo-proxy on the link (default 20; 0: off)\n"
          "  --heartbeat-misses N  intervals without one before the peer is down (default 4)\n"
          "  --no-client-heartbeat  primary: do not also beat on the client side (the secondary's\n"
          "                      split-brain guard then relies on the link alone)\n"
          "  --vm-mac MAC        only frames to (client side) / from (VM side) this MAC are compared\n"
          "  --mbufs N           packet buffers (default 16384)\n"
          "  --idle-sleep-us N   sleep N us when a poll finds nothing (default 0: busy-poll)\n"
          "  --shutdown-policy release|checkpoint   on SIGINT/SIGTERM/shutdown (default release)\n"
          "  --shutdown-timeout-ms N  how long 'checkpoint' waits (default 5000)\n"
          CLI_COMPARE_HELP,
          out);
}

static void on_signal(int sig)
{
    (void)sig;
    pipeline_request_stop();
}

struct run_options {
    struct pipeline_config pipeline;
    struct ops_server_config ops;
    struct checkpoint_ctl_config qmp;
};

static int apply_option(int c, const char *arg, struct run_options *o)
{
    struct pipeline_config *cfg = &o->pipeline;
    switch (c) {
    case OPT_ROLE:
        if (strcmp(arg, "primary") == 0)
            cfg->role = ROLE_PRIMARY;
        else if (strcmp(arg, "secondary") == 0)
            cfg->role = ROLE_SECONDARY;
        else
            return fprintf(stderr, "colo-proxy run: --role '%s': use primary or secondary\n", arg), -1;
        return 0;
    case OPT_CLIENT_PORT: cfg->port_name[PORT_CLIENT] = arg; return 0;
    case OPT_PVM_PORT: cfg->port_name[PORT_PVM] = arg; return 0;
    case OPT_LINK_PORT: cfg->port_name[PORT_LINK] = arg; return 0;
    case OPT_SVM_PORT: cfg->port_name[PORT_SVM] = arg; return 0;
    case OPT_CONTROL: o->ops.control_path = arg; return 0;
    case OPT_METRICS: o->ops.metrics_addr = arg; return 0;
    case OPT_QMP: o->qmp.qmp = arg; return 0;
    case OPT_CHECKPOINT_PERIOD: return cli_parse_u32("checkpoint-period-ms", arg, 1, &o->qmp.period_ms);
    case OPT_HEARTBEAT: return cli_parse_u32("heartbeat-ms", arg, 0, &cfg->heartbeat_ms);
    case OPT_HEARTBEAT_MISSES: return cli_parse_u32("heartbeat-misses", arg, 1, &cfg->heartbeat_misses);
    case OPT_NO_CLIENT_HEARTBEAT: cfg->client_heartbeat = false; return 0;
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
            return fprintf(stderr, "colo-proxy run: --shutdown-policy '%s': use release or checkpoint\n", arg), -1;
        return 0;
    case OPT_SHUTDOWN_TIMEOUT:
        return cli_parse_u32("shutdown-timeout-ms", arg, 0, &cfg->shutdown_timeout_ms);
    default:
        return cli_compare_option(c, arg, &cfg->compare) == 0 ? 0 : -1;
    }
}

static int parse_run_options(int argc, char **argv, struct run_options *o, bool *help)
{
    static const struct option longopts[] = {
        { "role", required_argument, NULL, OPT_ROLE },
        { "client-port", required_argument, NULL, OPT_CLIENT_PORT },
        { "pvm-port", required_argument, NULL, OPT_PVM_PORT },
        { "link-port", required_argument, NULL, OPT_LINK_PORT },
        { "svm-port", required_argument, NULL, OPT_SVM_PORT },
        { "control", required_argument, NULL, OPT_CONTROL },
        { "metrics", required_argument, NULL, OPT_METRICS },
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
        { "help", no_argument, NULL, OPT_HELP },
        CLI_COMPARE_LONGOPTS,
        { NULL, 0, NULL, 0 },
    };
    bool role_given = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == OPT_HELP) {
            *help = true;
            return 0;
        }
        if (c == '?' || apply_option(c, optarg, o) != 0)
            return -1;
        role_given |= c == OPT_ROLE;
    }
    if (!role_given) {
        fputs("colo-proxy run: say which host this is with --role primary or --role secondary\n", stderr);
        return -1;
    }
    return 0;
}

int cmd_run(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            run_usage(stdout);
            return 0;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    int used = rte_eal_init(argc, argv);
    if (used < 0) {
        fprintf(stderr, "colo-proxy run: DPDK EAL failed to start: %s (without hugepages, pass --no-huge -m 256)\n",
                rte_strerror(rte_errno));
        return 2;
    }
    struct run_options o = { .ops = { NULL, NULL } };
    pipeline_config_default(&o.pipeline);
    checkpoint_ctl_config_default(&o.qmp);
    bool help = false;
    int rc = 2;
    if (parse_run_options(argc - used, argv + used, &o, &help) != 0) {
        run_usage(stderr);
    } else if (help) {
        run_usage(stdout);
        rc = 0;
    } else {
        char err[512];
        struct pipeline *p = pipeline_create(&o.pipeline, err, sizeof(err));
        struct control *ctl = p ? control_start(&o.ops, o.qmp.qmp ? &o.qmp : NULL,
                                                pipeline_ring_to_dataplane(p),
                                                pipeline_ring_from_dataplane(p), err, sizeof(err))
                                : NULL;
        if (!p || !ctl) {
            fprintf(stderr, "colo-proxy run: %s\n", err);
        } else {
            signal(SIGINT, on_signal);
            signal(SIGTERM, on_signal);
            pipeline_run(p);
            control_stop(ctl);
            rc = 0;
        }
        pipeline_destroy(p);
    }
    rte_eal_cleanup();
    return rc;
}
