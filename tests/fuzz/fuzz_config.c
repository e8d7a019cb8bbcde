/*
 * fuzz_config.c — libFuzzer target: the configuration values users type, as the
 * command line parses them (the compare knobs by QEMU's names, MAC addresses).
 *
 * The input is NUL-separated tokens; the first byte of each picks the option
 * (the five compare knobs, then a MAC).
 * Invariants: a value is applied only when it is a whole decimal number (digits
 * only) at or above the option's minimum and below 2^32 - 1, and then exactly that number; a
 * rejected value leaves the configuration as it was; a MAC is accepted only as
 * six two-digit hex groups and then decodes to those bytes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "colo/cli.h"
#include "fuzz_input.h"

static bool plain_number(const char *s, uint64_t *out)
{
    if (!*s)
        return false;
    *out = 0;
    for (const char *c = s; *c; c++) {
        if (!isdigit((unsigned char)*c))
            return false;
        *out = *out * 10 + (uint64_t)(*c - '0');
        if (*out > UINT32_MAX)
            return false;
    }
    return *out < UINT32_MAX;
}

static void check_knob(int opt, const char *arg)
{
    struct colo_compare_config cfg, before;
    colo_compare_config_default(&cfg);
    before = cfg;
    int rc = cli_compare_option(opt, arg, &cfg);
    uint64_t n;
    bool valid = plain_number(arg, &n) && n >= (opt == CLI_OPT_MIN_INTERVAL ? 0 : 1);
    FUZZ_CHECK(rc == (valid ? 0 : -1));
    if (rc != 0) {
        FUZZ_CHECK(memcmp(&cfg, &before, sizeof(cfg)) == 0);
        return;
    }
    const uint32_t *field = opt == CLI_OPT_COMPARE_TIMEOUT ? &cfg.compare_timeout_ms
                          : opt == CLI_OPT_SCAN_CYCLE      ? &cfg.expired_scan_cycle_ms
                          : opt == CLI_OPT_MAX_QUEUE       ? &cfg.max_queue_size
                          : opt == CLI_OPT_MAX_CONNS       ? &cfg.max_conns
                                                           : &cfg.checkpoint_min_interval_ms;
    FUZZ_CHECK(*field == n);
}

static void check_mac(const char *arg)
{
    uint8_t mac[6];
    unsigned b[6];
    char tail;
    bool valid = strlen(arg) == 17 &&
                 sscanf(arg, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) == 6;
    for (int i = 0; valid && i < 17; i++)
        valid = i % 3 == 2 ? arg[i] == ':' : isxdigit((unsigned char)arg[i]);
    int rc = cli_parse_mac("mac", arg, mac);
    FUZZ_CHECK(rc == (valid ? 0 : -1));
    for (int i = 0; valid && i < 6; i++)
        FUZZ_CHECK(mac[i] == b[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    for (char *tok = text; tok < text + size; tok += strlen(tok) + 1) {
        if (!*tok)
            continue;
        int which = (unsigned char)tok[0] % 6;
        if (which == 5)
            check_mac(tok + 1);
        else
            check_knob(CLI_OPT_COMPARE_TIMEOUT + which, tok + 1);
    }
    free(text);
    return 0;
}
