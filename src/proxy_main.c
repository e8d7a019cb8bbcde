/*
 * proxy_main.c — the `colo-proxy` program: dispatches to its subcommands.
 *
 *   colo-proxy run [EAL options] -- [options]   the DPDK data plane of one host
 *   colo-proxy compare [options]                 socket mode, in place of QEMU's colo-compare
 *   colo-proxy rewrite [options]                 socket mode on the secondary, in place of filter-rewriter
 *   colo-proxy replay [options] PVM.pcap SVM.pcap   offline comparison
 *   colo-proxy status [--json]                   what a running colo-proxy is doing
 *   colo-proxy explain FILE                      a divergence report, for a person
 */
#include <stdio.h>
#include <string.h>

#include "colo/cli.h"

static void usage(FILE *out)
{
    fputs("usage: colo-proxy COMMAND [options]\n"
          "commands:\n"
          "  run [EAL options] -- [options]       the poll-mode data plane of a primary or secondary\n"
          "  compare --primary_in .. --secondary_in .. --outdev ..   in place of QEMU's colo-compare\n"
          "  rewrite --mirror_in .. --to_svm .. --from_svm .. --to_primary ..   in place of filter-rewriter\n"
          "  replay PRIMARY.pcap SECONDARY.pcap   compare a PVM and an SVM trace offline\n"
          "  status [--control PATH] [--json]     what a running colo-proxy is doing\n"
          "  explain FILE                         a divergence report: connection, offset, hex view, hint\n"
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
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(argv[1], "compare") == 0)
        return cmd_compare(argc - 1, argv + 1);
    if (strcmp(argv[1], "rewrite") == 0)
        return cmd_rewrite(argc - 1, argv + 1);
    if (strcmp(argv[1], "explain") == 0)
        return cmd_explain(argc - 1, argv + 1);
    if (strcmp(argv[1], "status") == 0)
        return cmd_status(argc - 1, argv + 1);
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "colo-proxy: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
