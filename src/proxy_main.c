/*
 * proxy_main.c — the `colo-proxy` program: dispatches to its subcommands.
 *
 *   colo-proxy run [EAL options] -- [options]   the DPDK data plane of one host
 *   colo-proxy compare [options]                 socket mode, in place of QEMU's colo-compare
 *   colo-proxy rewrite [options]                 socket mode on the secondary, in place of filter-rewriter
 *   colo-proxy replay [options] PVM.pcap SVM.pcap   offline comparison
 *   colo-proxy status [--json]                   what a running colo-proxy is doing
 *   colo-proxy explain FILE                      a divergence report, for a person
 *   colo-proxy help [COMMAND], colo-proxy --version
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "colo/cli.h"
#include "colo/log.h"

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
          "  help [COMMAND]                       this text, or COMMAND's options (as COMMAND --help)\n"
          "  --version                            the version of colo-proxy\n"
          "Run 'colo-proxy help COMMAND' or 'colo-proxy COMMAND -h' for a command's options.\n",
          out);
}

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    { "run", cmd_run },         { "compare", cmd_compare }, { "rewrite", cmd_rewrite },
    { "replay", cmd_replay },   { "status", cmd_status },   { "explain", cmd_explain },
};

static const struct command *command_named(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static bool is_help(const char *word)
{
    return strcmp(word, "help") == 0 || strcmp(word, "--help") == 0 || strcmp(word, "-h") == 0;
}

/* `colo-proxy help [CMD]`: the overview, or CMD's own --help. */
static int help(int argc, char **argv)
{
    if (argc < 3) {
        usage(stdout);
        return 0;
    }
    const struct command *cmd = command_named(argv[2]);
    if (!cmd) {
        fprintf(stderr, "colo-proxy help: no command '%s'\n", argv[2]);
        usage(stderr);
        return 2;
    }
    log_set_command(cmd->name);
    char *words[] = { argv[2], "--help", NULL };
    return cmd->run(2, words);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (is_help(argv[1]))
        return help(argc, argv);
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("colo-proxy %s\n", COLO_PROXY_VERSION);
        return 0;
    }
    const struct command *cmd = command_named(argv[1]);
    if (!cmd) {
        fprintf(stderr, "colo-proxy: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    log_set_command(cmd->name);
    return cmd->run(argc - 1, argv + 1);
}
