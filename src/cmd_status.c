/*
 * cmd_status.c — `colo-proxy status`: what a running colo-proxy is doing.
 *
 *   colo-proxy status [--control PATH] [--json | --prometheus]
 *
 * Connects to the control socket (ops_server.h), asks for `status`, `status
 * json` or `metrics`, prints the answer and exits: 0 with an answer, 1 when
 * colo-proxy cannot be reached or does not answer within a few seconds.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "colo/cli.h"

#define DEFAULT_CONTROL "/run/colo-proxy.sock"
#define ANSWER_TIMEOUT_MS 5000

enum { OPT_CONTROL = 600, OPT_JSON, OPT_PROMETHEUS, OPT_HELP };

static void status_usage(FILE *out)
{
    fputs("usage: colo-proxy status [--control PATH] [--json | --prometheus]\n"
          "  --control PATH   the running colo-proxy's --control socket (default " DEFAULT_CONTROL ")\n"
          "  --json           one line of JSON instead of the table\n"
          "  --prometheus     the Prometheus text that --metrics serves\n",
          out);
}

static int connect_control(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "colo-proxy status: control socket path '%s' is too long\n", path);
        return -1;
    }
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        fprintf(stderr, "colo-proxy status: cannot reach '%s': %s (is colo-proxy running with --control %s?)\n",
                path, strerror(errno), path);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Is the answer complete? JSON is one line; the table and metrics end with an empty line. */
static bool answer_complete(const char *buf, size_t len, bool one_line)
{
    if (len && strncmp(buf, "error", 5) == 0 && buf[len - 1] == '\n')
        return true;
    if (one_line)
        return len && buf[len - 1] == '\n';
    return len >= 2 && buf[len - 1] == '\n' && buf[len - 2] == '\n';
}

/* Events are broadcast to every client: drop whole "event ..." lines ahead of the answer. */
static size_t drop_events(char *buf, size_t len)
{
    char *nl;
    while (len > 6 && strncmp(buf, "event ", 6) == 0 && (nl = memchr(buf, '\n', len))) {
        size_t line = (size_t)(nl - buf) + 1;
        memmove(buf, buf + line, len - line);
        len -= line;
    }
    return len;
}

static int read_answer(int fd, bool one_line)
{
    static char buf[1 << 20];
    size_t len = 0;
    while (!answer_complete(buf, len = drop_events(buf, len), one_line)) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (len == sizeof(buf) || poll(&p, 1, ANSWER_TIMEOUT_MS) != 1) {
            fputs("colo-proxy status: no whole answer within 5 s; is colo-proxy stuck?\n", stderr);
            return 1;
        }
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);
        if (n <= 0) {
            fputs("colo-proxy status: colo-proxy closed the control socket before answering\n", stderr);
            return 1;
        }
        len += (size_t)n;
    }
    if (!one_line && strncmp(buf, "error", 5) != 0)
        len--; /* the empty line that ends the answer */
    fwrite(buf, 1, len, stdout);
    return strncmp(buf, "error", 5) == 0;
}

struct status_cli {
    const char *path, *command;
};

static int apply_option(void *ctx, int c, const char *arg)
{
    struct status_cli *o = ctx;
    switch (c) {
    case OPT_CONTROL: o->path = arg; return 0;
    case OPT_JSON: o->command = "status json"; return 0;
    case OPT_PROMETHEUS: o->command = "metrics"; return 0;
    case OPT_HELP: return CLI_HELP;
    default: return -1;
    }
}

int cmd_status(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "control", required_argument, NULL, OPT_CONTROL },
        { "json", no_argument, NULL, OPT_JSON },
        { "prometheus", no_argument, NULL, OPT_PROMETHEUS },
        { "help", no_argument, NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    static const struct cli_spec spec = { "status", "h", longopts, NULL, apply_option, false };
    struct status_cli o = { DEFAULT_CONTROL, "status" };
    struct cli_parsed parsed;
    int bad = cli_parse(&spec, argc, argv, &o, &parsed);
    cli_parsed_free(&parsed);
    if (!bad && parsed.help) {
        status_usage(stdout);
        return 0;
    }
    if (bad) {
        cli_usage_hint("status");
        return 2;
    }
    int fd = connect_control(o.path);
    if (fd < 0)
        return 1;
    int rc = 1;
    if (dprintf(fd, "%s\n", o.command) > 0)
        rc = read_answer(fd, strcmp(o.command, "status json") == 0);
    close(fd);
    return rc;
}
