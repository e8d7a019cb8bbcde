/*
 * cli.c — option value parsing shared by the subcommands.
 */
#include "colo/cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int cli_parse_u32(const char *name, const char *s, uint32_t min, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !isdigit((unsigned char)*s) || *end != '\0' || v < min || v > UINT32_MAX - 1) {
        fprintf(stderr, "colo-proxy: --%s '%s' is not a whole number >= %u\n", name, s, min);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int cli_parse_mac(const char *name, const char *s, uint8_t mac[6])
{
    unsigned b[6];
    bool ok = strlen(s) == 17;
    for (int i = 0; ok && i < 17; i++)
        ok = i % 3 == 2 ? s[i] == ':' : isxdigit((unsigned char)s[i]);
    if (!ok || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6) {
        fprintf(stderr, "colo-proxy: --%s '%s' is not a MAC address like 52:54:00:12:34:56\n", name, s);
        return -1;
    }
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)b[i];
    return 0;
}

int cli_compare_option(int opt, const char *arg, struct colo_compare_config *cfg)
{
    switch (opt) {
    case CLI_OPT_COMPARE_TIMEOUT:
        return cli_parse_u32("compare_timeout", arg, 1, &cfg->compare_timeout_ms);
    case CLI_OPT_SCAN_CYCLE:
        return cli_parse_u32("expired_scan_cycle", arg, 1, &cfg->expired_scan_cycle_ms);
    case CLI_OPT_MAX_QUEUE:
        return cli_parse_u32("max_queue_size", arg, 1, &cfg->max_queue_size);
    case CLI_OPT_MAX_CONNS:
        return cli_parse_u32("max-conns", arg, 1, &cfg->max_conns);
    case CLI_OPT_MIN_INTERVAL:
        return cli_parse_u32("checkpoint-min-interval", arg, 0, &cfg->checkpoint_min_interval_ms);
    default:
        return 1;
    }
}
