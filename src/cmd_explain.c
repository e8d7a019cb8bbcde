/*
 * cmd_explain.c — `colo-proxy explain FILE`: one divergence report, for a person.
 */
#include <stdio.h>
#include <string.h>

#include "colo/cli.h"
#include "colo/divergence_explain.h"

int cmd_explain(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        puts("usage: colo-proxy explain FILE\n"
             "  FILE is a divergence report: divergence-N.txt, or its -pvm.pcap or -svm.pcap, as written\n"
             "  by --divergence-reports DIR (compare, run) or --reports DIR (replay)");
        return 0;
    }
    if (argc != 2) {
        fputs("colo-proxy explain: give one report file (divergence-N.txt or one of its pcaps)\n", stderr);
        return 2;
    }
    char err[512];
    if (divergence_explain(argv[1], stdout, err, sizeof(err)) != 0) {
        fprintf(stderr, "colo-proxy explain: %s\n", err);
        return 1;
    }
    return 0;
}
