/*
 * proxy_main.c — the `colo-proxy` program: dispatches to its subcommands.
 *
 *   colo-proxy run [EAL options] -- [options]   the DPDK data plane of one host
 *   colo-proxy compare [options]                 socket mode, in place of QEMU's colo-compare
 *   colo-proxy rewrite [options]                 socket mode on the secondary, in place of filter-rewriter
 *   colo-proxy replay [options] PVM.pcap SVM.pcap   offline comparison
 *   colo-proxy status [--json]                   what a running colo-proxy is doing
 *   colo-proxy explain FILE                      a divergence report, for a person
 *   colo-proxy witness --listen .. --key-file ..  the lease grantor of a pair, on a third host
 *   colo-proxy help [COMMAND], colo-proxy --version
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "colo/cli.h"
#include "colo/config_file.h"
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
          "  witness --listen ADDR:PORT --key-file FILE   the lease grantor of a pair, on a third host\n"
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
    { "witness", cmd_witness },
};

static const struct command *command_named(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* With the nearest command, as unknown options and config keys get theirs. */
static void unknown_command(const char *word)
{
    struct option names[sizeof(commands) / sizeof(commands[0]) + 1] = { { NULL, 0, NULL, 0 } };
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        names[i].name = commands[i].name;
    const char *near = config_file_nearest_option(word, names, NULL);
    fprintf(stderr, "colo-proxy: unknown command '%s'%s%s%s\n", word, near ? " (did you mean " : "", near ? near : "",
            near ? "?)" : "");
    usage(stderr);
}

static bool is_help(const char *word)
{
    return strcmp(word, "help") == 0 || strcmp(word, "--help") == 0 || strcmp(word, "-h") == 0;
}

/* Runs the command argv[0] names with its words; 2 (and the nearest name) when there is none. */
static int dispatch(int argc, char **argv)
{
    const struct command *cmd = command_named(argv[0]);
    if (!cmd) {
        unknown_command(argv[0]);
        return 2;
    }
    log_set_command(cmd->name);
    return cmd->run(argc, argv);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (is_help(argv[1]) && argc < 3) {
        usage(stdout);
        return 0;
    }
    if (is_help(argv[1])) { /* help CMD: CMD's own --help */
        char *words[] = { argv[2], "--help", NULL };
        return dispatch(2, words);
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("colo-proxy %s\n", COLO_PROXY_VERSION);
        return 0;
    }
    return dispatch(argc - 1, argv + 1);
}
