/*
 * cli.c — what the subcommands share in reading options: the two passes (the
 * config file's group, then the command line), value parsing with errors a user
 * can act on ("colo-proxy CMD: ...", unknown options with the nearest one), and
 * the one check of every path a command will open (cli_check_path).
 */
#include "colo/cli.h"

#include <glib.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "colo/config_file.h"
#include "colo/log.h"
#include "colo/witness_msg.h"

static bool errors_to_log;

void cli_errors_to_log(bool on)
{
    errors_to_log = on;
}

void cli_error(const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (errors_to_log)
        log_msg(LOG_WARNING, "%s", msg);
    else
        fprintf(stderr, "%s: %s\n", log_who(), msg);
}

int cli_parse_u32(const char *name, const char *s, uint32_t min, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !isdigit((unsigned char)*s) || *end != '\0' || v < min || v > UINT32_MAX - 1) {
        cli_error("--%s '%s' is not a whole number >= %u", name, s, min);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int cli_on_off_value(const char *text)
{
    static const char *const on[] = { "on", "true", "yes", NULL }, *const off[] = { "off", "false", "no", NULL };
    for (int i = 0; on[i]; i++) {
        if (strcmp(text, on[i]) == 0)
            return 1;
        if (strcmp(text, off[i]) == 0)
            return 0;
    }
    return -1;
}

int cli_parse_on_off(const char *name, const char *s, bool *out)
{
    int v = s ? cli_on_off_value(s) : 1;
    if (v < 0) {
        cli_error("--%s '%s' is a flag: give it alone, or write on or off (true or false)", name, s);
        return -1;
    }
    *out = v == 1;
    return 0;
}

int cli_parse_mac(const char *name, const char *s, uint8_t mac[6])
{
    unsigned b[6];
    bool ok = strlen(s) == 17;
    for (int i = 0; ok && i < 17; i++)
        ok = i % 3 == 2 ? s[i] == ':' : isxdigit((unsigned char)s[i]);
    if (!ok || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6) {
        cli_error("--%s '%s' is not a MAC address like 52:54:00:12:34:56", name, s);
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
    case CLI_OPT_BYPASS: {
        char err[256];
        if (bypass_rules_add(&cfg->bypass, arg, err, sizeof(err)) != 0) {
            cli_error("--bypass: %s", err);
            return -1;
        }
        return 0;
    }
    default:
        return 1;
    }
}

const char *cli_config_path(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            return argv[i + 1];
        if (strncmp(argv[i], "--config=", 9) == 0)
            return argv[i] + 9;
    }
    return NULL;
}

static int log_option(int c, const char *arg)
{
    char err[512];
    bool file = c == CLI_OPT_LOG && strncmp(arg, "file:", 5) == 0 && arg[5];
    int rc = file && cli_check_path("log", arg + 5, CLI_PATH_CREATE, err, sizeof(err)) != 0 ? -1
             : c == CLI_OPT_LOG ? log_set_target(arg, err, sizeof(err))
             : log_set_level(arg, err, sizeof(err));
    if (rc != 0)
        cli_error("%s", err);
    return rc;
}

static const struct option *option_with_value(const struct option *longopts, int val)
{
    for (const struct option *o = longopts; o->name; o++)
        if (o->val == val)
            return o;
    return NULL;
}

/* What getopt refused (it prints nothing: opterr is 0), said our way, with the nearest option. */
static void report_bad_option(const struct cli_spec *spec, int c, char **argv)
{
    const char *word = argv[optind - 1];
    const struct option *o = optopt ? option_with_value(spec->longopts, optopt) : NULL;
    if (strncmp(word, "--", 2) != 0) {
        if (c == ':')
            cli_error("option '-%c' needs a value", optopt);
        else
            cli_error("unknown option '-%c'", optopt ? optopt : '?');
        return;
    }
    const char *name = word + 2, *eq = strchr(name, '=');
    int len = (int)(eq ? eq - name : (long)strlen(name));
    if (c == ':' && o) {
        cli_error("option '--%s' needs a value", o->name);
    } else if (o && eq) {
        cli_error("option '--%.*s' takes no value", len, name);
    } else {
        g_autofree char *key = g_strndup(name, (gsize)len);
        const char *near = config_file_nearest_option(key, spec->longopts, NULL);
        cli_error("unknown option '--%s'%s%s%s", key, near ? " (did you mean --" : "", near ? near : "",
                  near ? "?)" : "");
    }
}

/*
 * QEMU's habit "--flag on" for a flag whose value must be attached: said, with
 * the spelling that works. getopt has not moved the next word yet.
 */
static bool value_apart(const struct cli_spec *spec, int c, int argc, char **argv)
{
    const struct option *o = option_with_value(spec->longopts, c);
    if (!o || o->has_arg != optional_argument || optarg || optind >= argc || argv[optind][0] == '-')
        return false;
    cli_error("'%s' after --%s: a value of --%s is written --%s=%s", argv[optind], o->name, o->name, o->name,
              argv[optind]);
    return true;
}

/* One getopt pass; `file` names the config file when argv holds its words. */
static int apply_all(const struct cli_spec *spec, const char *file, int argc, char **argv, void *ctx,
                     struct cli_parsed *out)
{
    int c;
    g_autofree char *shortopts = g_strdup_printf(":%s", spec->shortopts); /* ':' for a missing value */
    optind = 0; /* glibc: start afresh on a new argv */
    opterr = 0;
    while ((c = getopt_long(argc, argv, shortopts, spec->longopts, NULL)) != -1) {
        if (c == CLI_OPT_CONFIG)
            continue;
        if (c == CLI_OPT_CHECK) {
            out->check = true;
            continue;
        }
        if (c == '?' || c == ':')
            report_bad_option(spec, c, argv);
        if (!spec->takes_operands && value_apart(spec, c, argc, argv))
            return -1;
        int rc = c == '?' || c == ':' ? -1
                 : c == 'h' ? CLI_HELP
                 : c == CLI_OPT_LOG || c == CLI_OPT_LOG_LEVEL ? log_option(c, optarg)
                 : spec->apply(ctx, c, optarg);
        if (rc == CLI_HELP) {
            out->help = true;
            return 0;
        }
        if (rc != 0) {
            if (file) {
                const char *word = argv[optind - 1] + 2, *eq = strchr(word, '=');
                cli_error("that is key '%.*s' in [%s] of config '%s'",
                        (int)(eq ? eq - word : (long)strlen(word)), word, spec->group, file);
            }
            return -1;
        }
    }
    out->operands = optind;
    return 0;
}

/* A word that is no option, for a command that takes none. */
static int stray_word(const struct cli_spec *spec, const char *word)
{
    cli_error("'%s' is no option: %s takes options only (they start with --)", word, spec->group);
    return -1;
}

int cli_parse(const struct cli_spec *spec, int argc, char **argv, void *ctx, struct cli_parsed *out)
{
    memset(out, 0, sizeof(*out));
    out->config_path = cli_config_path(argc, argv);
    if (out->config_path) {
        char err[512];
        out->config_words = config_file_words(out->config_path, spec->group, spec->longopts, spec->file_only, err,
                                              sizeof(err));
        if (!out->config_words) {
            cli_error("%s", err);
            return -1;
        }
        guint n = g_strv_length(out->config_words);
        char **words = g_new0(char *, n + 2);
        words[0] = argv[0];
        memcpy(words + 1, out->config_words, n * sizeof(char *));
        int rc = apply_all(spec, out->config_path, (int)n + 1, words, ctx, out);
        g_free(words);
        if (rc != 0 || out->help)
            return rc;
    }
    if (apply_all(spec, NULL, argc, argv, ctx, out) != 0)
        return -1;
    return out->help || spec->takes_operands || out->operands >= argc ? 0 : stray_word(spec, argv[out->operands]);
}

void cli_parsed_free(struct cli_parsed *p)
{
    g_strfreev(p->config_words);
    p->config_words = NULL;
}

int cli_report_check(const char *command, const struct cli_parsed *p, int check_rc, const char *err)
{
    if (check_rc != 0) {
        fprintf(stderr, "colo-proxy %s: %s\n", command, err);
        return 2;
    }
    printf("colo-proxy %s: configuration OK (%s%s)\n", command, p->config_path ? p->config_path : "command line",
           p->config_path ? " and the command line" : "");
    return 0;
}

int cli_check_path(const char *option, const char *path, enum cli_path_use use, char *err, size_t errlen)
{
    g_autofree char *what = option ? g_strdup_printf("--%s '%s'", option, path) : g_strdup_printf("'%s'", path);
    if (use == CLI_PATH_READ) {
        bool is_dir = g_file_test(path, G_FILE_TEST_IS_DIR);
        if (is_dir || faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) != 0) {
            snprintf(err, errlen, "%s: cannot read it: %s", what, is_dir ? "it is a directory" : strerror(errno));
            return -1;
        }
        return 0;
    }
    g_autofree char *dir = use == CLI_PATH_DIR ? g_strdup(path) : g_path_get_dirname(path);
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        snprintf(err, errlen, "%s: '%s' %s: create the directory (mkdir -p '%s') or name another", what, dir,
                 g_file_test(dir, G_FILE_TEST_EXISTS) ? "is no directory" : "does not exist", dir);
        return -1;
    }
    if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) != 0) { /* as the user the daemon runs as */
        snprintf(err, errlen, "%s: this user (uid %u) cannot create files in '%s': %s; run as its owner or name "
                 "another directory", what, (unsigned)geteuid(), dir, strerror(errno));
        return -1;
    }
    return 0;
}

void cli_usage_hint(const char *command)
{
    fprintf(stderr, "colo-proxy %s: see 'colo-proxy %s --help' for the options\n", command, command);
}

int cli_parse_udp_addr(const char *option, const char *text, struct sockaddr_storage *ss, unsigned *len, char *err,
                       size_t errlen)
{
    const char *colon = strrchr(text, ':');
    g_autofree char *host = colon ? g_strndup(text, (gsize)(colon - text)) : NULL;
    if (host && host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
    struct addrinfo *ai = NULL;
    if (!colon || !colon[1] || !host[0] || getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
        snprintf(err, errlen, "--%s '%s' is not ADDR:PORT with a numeric address, e.g. 192.0.2.10:7440 "
                 "or [2001:db8::10]:7440", option, text);
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = (unsigned)ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

int cli_read_key_file(const char *option, const char *path, uint8_t key[WITNESS_KEY_MAX], size_t *key_len, char *err,
                      size_t errlen)
{
    g_autofree char *data = NULL;
    gsize len = 0;
    g_autoptr(GError) e = NULL;
    if (cli_check_path(option, path, CLI_PATH_READ, err, errlen) != 0)
        return -1;
    if (!g_file_get_contents(path, &data, &len, &e)) {
        snprintf(err, errlen, "--%s: %s", option, e->message);
        return -1;
    }
    if (len && data[len - 1] == '\n')
        len--;
    if (len < WITNESS_KEY_MIN || len > WITNESS_KEY_MAX) {
        snprintf(err, errlen, "--%s '%s' holds %zu bytes; a key is %d to %d bytes, e.g. made with "
                 "'head -c 32 /dev/urandom > %s'", option, path, (size_t)len, WITNESS_KEY_MIN, WITNESS_KEY_MAX, path);
        memset(data, 0, len);
        return -1;
    }
    memcpy(key, data, len);
    memset(data, 0, len);
    *key_len = len;
    return 0;
}
