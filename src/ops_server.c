/*
 * ops_server.c — the control socket and the HTTP metrics endpoint.
 *
 * Owns: the unix listener and its clients, the evhttp server, and the list of
 * requests waiting for a snapshot. A waiter is a client's command line or an
 * HTTP request; when the owner says a snapshot is ready, every waiter is answered
 * from it and the list is emptied. A client or HTTP connection that goes away
 * while waiting is struck off the list first. Must never: block the event loop,
 * or keep more than MAX_CLIENTS clients or MAX_WAITERS waiters.
 */
#include "colo/ops_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "colo/cli.h"
#include "colo/log.h"
#include "colo/metrics.h"

#define MAX_CLIENTS 32
#define MAX_WAITERS 64
#define MAX_LINE 256
#define CONTROL_SOCKET_MODE 0600

struct waiter {
    struct bufferevent *client;     /* a control client's command, or */
    struct evhttp_request *http;    /* an HTTP GET /metrics, on */
    struct evhttp_connection *http_conn;
    char line[MAX_LINE + 1];
};

struct ops_server {
    struct event_base *base;
    struct ops_server_ops ops;
    void *ctx;
    struct evconnlistener *listener;
    char control_path[108];
    struct bufferevent *clients[MAX_CLIENTS];
    struct evhttp *http;
    struct waiter waiters[MAX_WAITERS];
    int n_waiters;
    bool refreshing;
    struct {                      /* ops_server_start_local's owner */
        void (*fill)(void *ctx, struct metric_set *m);
        void (*checkpoint_done)(void *ctx);
        void *ctx;
    } local;
};

/* ---- answers ---- */

typedef char *(*render_fn)(const struct metric_set *m);

static char *render(struct ops_server *s, render_fn fn)
{
    struct metric_set *m = metric_set_new();
    s->ops.fill(s->ctx, m);
    char *text = fn(m);
    metric_set_free(m);
    return text;
}

static enum ops_reply builtin(struct ops_server *s, const char *line, struct evbuffer *out)
{
    render_fn fn;
    const char *end = "\n";
    if (strcmp(line, "status") == 0)
        fn = metric_set_table;
    else if (strcmp(line, "status json") == 0)
        fn = metric_set_json, end = "";
    else if (strcmp(line, "metrics") == 0)
        fn = metric_set_prometheus;
    else
        return OPS_UNKNOWN;
    char *text = render(s, fn);
    evbuffer_add_printf(out, "%s%s", text, end);
    g_free(text);
    return OPS_DONE;
}

static void answer_http(struct ops_server *s, struct evhttp_request *req)
{
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), NULL, NULL);
    char *text = render(s, metric_set_prometheus);
    struct evbuffer *body = evbuffer_new();
    evbuffer_add(body, text, strlen(text));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, HTTP_OK, "OK", body);
    evbuffer_free(body);
    g_free(text);
}

/* ---- waiting for a snapshot ---- */

static void strike_waiters(struct ops_server *s, struct bufferevent *client, struct evhttp_connection *http_conn);

static void on_http_closed(struct evhttp_connection *conn, void *arg)
{
    strike_waiters(arg, NULL, conn);
}


static bool wait_for_snapshot(struct ops_server *s, struct bufferevent *client, struct evhttp_request *http,
                              const char *line)
{
    if (s->n_waiters == MAX_WAITERS)
        return false;
    struct waiter *w = &s->waiters[s->n_waiters++];
    w->client = client;
    w->http = http;
    w->http_conn = http ? evhttp_request_get_connection(http) : NULL;
    snprintf(w->line, sizeof(w->line), "%s", line ? line : "");
    if (http)
        evhttp_connection_set_closecb(w->http_conn, on_http_closed, s);
    if (!s->refreshing) {
        s->refreshing = true;
        s->ops.refresh(s->ctx);
    }
    return true;
}

static void strike_waiters(struct ops_server *s, struct bufferevent *client, struct evhttp_connection *http_conn)
{
    int kept = 0;
    for (int i = 0; i < s->n_waiters; i++) {
        struct waiter *w = &s->waiters[i];
        if ((client && w->client == client) || (http_conn && w->http_conn == http_conn))
            continue;
        s->waiters[kept++] = *w;
    }
    s->n_waiters = kept;
}

static void run_line(struct ops_server *s, struct bufferevent *client, const char *line, bool fresh);

void ops_server_snapshot_ready(struct ops_server *s)
{
    struct waiter ready[MAX_WAITERS];
    int n = s->n_waiters;
    memcpy(ready, s->waiters, sizeof(ready[0]) * (size_t)n);
    s->n_waiters = 0;
    s->refreshing = false;
    for (int i = 0; i < n; i++) {
        if (ready[i].http)
            answer_http(s, ready[i].http);
        else
            run_line(s, ready[i].client, ready[i].line, true);
    }
}

/* ---- the control socket ---- */

static void run_line(struct ops_server *s, struct bufferevent *client, const char *line, bool fresh)
{
    struct evbuffer *out = bufferevent_get_output(client);
    enum ops_reply r = OPS_UNKNOWN;
    bool needs_snapshot = !strcmp(line, "status") || !strcmp(line, "status json") || !strcmp(line, "metrics");
    if (needs_snapshot)
        r = fresh ? builtin(s, line, out) : OPS_NEED_SNAPSHOT;
    else
        r = s->ops.command(s->ctx, line, fresh, out);
    if (r == OPS_NEED_SNAPSHOT && !fresh && !wait_for_snapshot(s, client, NULL, line))
        evbuffer_add_printf(out, "error busy: %d requests are waiting for a snapshot, retry\n", MAX_WAITERS);
    if (r == OPS_UNKNOWN)
        evbuffer_add_printf(out, "error unknown command '%.64s': try status, status json, metrics, "
                                 "checkpoint-done, stats, shutdown\n", line);
}

static void drop_client(struct ops_server *s, struct bufferevent *bev)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (s->clients[i] == bev)
            s->clients[i] = NULL;
    strike_waiters(s, bev, NULL);
    bufferevent_free(bev);
}

static void on_client_read(struct bufferevent *bev, void *arg)
{
    struct ops_server *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char *line;
    size_t len;
    while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF))) {
        if (len && line[len - 1] == '\r')
            line[len - 1] = '\0';
        if (len <= MAX_LINE)
            run_line(s, bev, line, false);
        free(line);
    }
    if (evbuffer_get_length(in) > MAX_LINE) {
        log_msg(LOG_WARNING, "control client sent a line over %d bytes; disconnected", MAX_LINE);
        drop_client(s, bev);
    }
}

static void on_client_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        drop_client(arg, bev);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    (void)l;
    (void)sa;
    (void)len;
    struct ops_server *s = arg;
    int slot = -1;
    for (int i = 0; i < MAX_CLIENTS && slot < 0; i++)
        slot = s->clients[i] ? -1 : i;
    if (slot < 0) {
        close(fd);
        return;
    }
    struct bufferevent *bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, on_client_read, NULL, on_client_event, s);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    s->clients[slot] = bev;
}

static int listen_unix(struct ops_server *s, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "control socket path '%s' is longer than %zu bytes; choose a shorter one", path,
                 sizeof(sun.sun_path) - 1);
        return -1;
    }
    strcpy(sun.sun_path, path);
    unlink(path);
    mode_t was = umask(0177); /* owner only (0600) from the moment it exists */
    s->listener = evconnlistener_new_bind(s->base, on_accept, s, LEV_OPT_CLOSE_ON_FREE, 16,
                                          (struct sockaddr *)&sun, sizeof(sun));
    umask(was);
    if (!s->listener) {
        snprintf(err, errlen, "cannot listen on control socket '%s': %s", path, strerror(errno));
        return -1;
    }
    if (chmod(path, CONTROL_SOCKET_MODE) != 0) {
        snprintf(err, errlen, "cannot make control socket '%s' owner-only: %s", path, strerror(errno));
        return -1;
    }
    strcpy(s->control_path, path);
    return 0;
}

/* ---- the metrics endpoint ---- */

static void on_http(struct evhttp_request *req, void *arg)
{
    struct ops_server *s = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET || !path || strcmp(path, "/metrics") != 0) {
        evhttp_send_error(req, HTTP_NOTFOUND, "colo-proxy serves GET /metrics only");
        return;
    }
    if (!wait_for_snapshot(s, NULL, req, NULL))
        evhttp_send_error(req, HTTP_SERVUNAVAIL, "too many requests waiting");
}

int ops_server_parse_metrics_addr(const char *text, char *addr, size_t addrlen, unsigned *port, char *err,
                                  size_t errlen)
{
    const char *colon = strrchr(text, ':');
    const char *port_text = colon ? colon + 1 : text;
    size_t host_len = colon ? (size_t)(colon - text) : 0;
    char *end;
    errno = 0;
    unsigned long p = strtoul(port_text, &end, 10);
    if (!*port_text || *end || errno || p == 0 || p > 65535 || host_len >= addrlen) {
        snprintf(err, errlen, "metrics address '%s' is not PORT or ADDR:PORT (e.g. 9464 or 127.0.0.1:9464)",
                 text);
        return -1;
    }
    if (colon)
        snprintf(addr, addrlen, "%.*s", (int)host_len, text);
    else
        snprintf(addr, addrlen, "127.0.0.1");
    *port = (unsigned)p;
    return 0;
}

/*
 * The address to bind: a numeric one as it is (no resolver, so a namespace with
 * only loopback works), a name through getaddrinfo without AI_ADDRCONFIG.
 */
static int metrics_sockaddr(const char *addr, unsigned port, struct sockaddr_storage *ss, socklen_t *len,
                            char *err, size_t errlen)
{
    char host[64];
    snprintf(host, sizeof(host), "%s", addr);
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    }
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof(*v4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*v6);
        return 0;
    }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *found = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &found);
    if (rc != 0) {
        snprintf(err, errlen, "cannot serve metrics on %s:%u: the name does not resolve: %s; give a numeric "
                 "address", addr, port, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, found->ai_addr, found->ai_addrlen);
    *len = found->ai_addrlen;
    ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port); /* same offset in sockaddr_in6 */
    freeaddrinfo(found);
    return 0;
}

static const char *bind_hint(int e)
{
    switch (e) {
    case EADDRINUSE: return " (another process has this port: choose another with --metrics)";
    case EADDRNOTAVAIL: return " (no interface here has this address)";
    case EACCES: return " (ports below 1024 need privilege)";
    default: return "";
    }
}

static int listen_http(struct ops_server *s, const char *spec, char *err, size_t errlen)
{
    char addr[64];
    unsigned port;
    struct sockaddr_storage ss;
    socklen_t len;
    if (ops_server_parse_metrics_addr(spec, addr, sizeof(addr), &port, err, errlen) != 0 ||
        metrics_sockaddr(addr, port, &ss, &len, err, errlen) != 0)
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    const char *step = "socket";
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        step = bind(fd, (struct sockaddr *)&ss, len) != 0 ? "bind" : listen(fd, 16) != 0 ? "listen" : NULL;
    }
    if (step) {
        int e = errno;
        snprintf(err, errlen, "cannot serve metrics on %s:%u: %s: %s%s", addr, port, step, strerror(e),
                 bind_hint(e));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    s->http = evhttp_new(s->base);
    if (!s->http || !evhttp_accept_socket_with_handle(s->http, fd)) {
        snprintf(err, errlen, "cannot serve metrics on %s:%u: out of memory for the HTTP server", addr, port);
        close(fd);
        return -1;
    }
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET);
    evhttp_set_gencb(s->http, on_http, s);
    return 0;
}

void ops_server_describe(const struct ops_server_config *cfg, GString *line)
{
    if (cfg->control_path)
        g_string_append_printf(line, "; control socket %s", cfg->control_path);
    if (cfg->metrics_addr)
        g_string_append_printf(line, "; metrics on %s", cfg->metrics_addr);
}

int ops_server_check_config(const struct ops_server_config *cfg, char *err, size_t errlen)
{
    char addr[64];
    unsigned port;
    if (cfg->control_path && cli_check_path("control", cfg->control_path, CLI_PATH_CREATE, err, errlen) != 0)
        return -1;
    return cfg->metrics_addr ? ops_server_parse_metrics_addr(cfg->metrics_addr, addr, sizeof(addr), &port, err,
                                                             errlen)
                             : 0;
}

/* ---- life cycle ---- */

struct ops_server *ops_server_start(struct event_base *base, const struct ops_server_config *cfg,
                                    const struct ops_server_ops *ops, void *ctx, char *err, size_t errlen)
{
    struct ops_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory for the control socket");
        return NULL;
    }
    s->base = base;
    s->ops = *ops;
    s->ctx = ctx;
    if ((cfg->control_path && listen_unix(s, cfg->control_path, err, errlen) != 0) ||
        (cfg->metrics_addr && listen_http(s, cfg->metrics_addr, err, errlen) != 0)) {
        ops_server_free(s);
        return NULL;
    }
    return s;
}

static enum ops_reply local_command(void *ctx, const char *line, bool fresh, struct evbuffer *out)
{
    (void)fresh;
    struct ops_server *s = ctx;
    if (strcmp(line, "checkpoint-done") == 0)
        s->local.checkpoint_done(s->local.ctx);
    else if (strcmp(line, "shutdown") == 0)
        event_base_loopbreak(s->base);
    else
        return OPS_UNKNOWN;
    evbuffer_add_printf(out, "ok\n");
    return OPS_DONE;
}

static void local_refresh(void *ctx)
{
    ops_server_snapshot_ready(ctx); /* one thread: the counters are always consistent */
}

static void local_fill(void *ctx, struct metric_set *m)
{
    struct ops_server *s = ctx;
    s->local.fill(s->local.ctx, m);
}

struct ops_server *ops_server_start_local(struct event_base *base, const struct ops_server_config *cfg,
                                          void (*fill)(void *ctx, struct metric_set *m),
                                          void (*checkpoint_done)(void *ctx), void *ctx, char *err,
                                          size_t errlen)
{
    static const struct ops_server_ops ops = { local_command, local_refresh, local_fill };
    struct ops_server *s = ops_server_start(base, cfg, &ops, NULL, err, errlen);
    if (s) {
        s->ctx = s;
        s->local.fill = fill;
        s->local.checkpoint_done = checkpoint_done;
        s->local.ctx = ctx;
    }
    return s;
}

void ops_server_free(struct ops_server *s)
{
    if (!s)
        return;
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (s->clients[i])
            bufferevent_free(s->clients[i]);
    if (s->listener)
        evconnlistener_free(s->listener);
    if (s->control_path[0])
        unlink(s->control_path);
    if (s->http)
        evhttp_free(s->http);
    free(s);
}

void ops_server_broadcast(struct ops_server *s, const char *line)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (s->clients[i])
            evbuffer_add_printf(bufferevent_get_output(s->clients[i]), "%s\n", line);
}
