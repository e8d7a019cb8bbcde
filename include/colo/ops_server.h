/*
 * ops_server.h — what operators talk to: a control socket and a metrics endpoint.
 *
 * The control socket is a unix stream socket (created owner-only, 0600) of line
 * commands. Built in:
 *   status          the human table, ended by an empty line
 *   status json     one line of JSON
 *   metrics         the Prometheus text, ended by an empty line
 * Every other line goes to the owner's `command` callback (checkpoint-done,
 * shutdown, ...). Events are broadcast to every client, one line each.
 *
 * The metrics endpoint (off unless an address is given; 127.0.0.1 when only a
 * port is) answers `GET /metrics` over HTTP with the Prometheus text.
 *
 * Both answer from a snapshot: a request that needs one calls the owner's
 * `refresh`, and is answered when the owner calls ops_server_snapshot_ready —
 * at once in socket mode, after a round trip through the rings with DPDK. The
 * owner's `command` may ask for the same wait by returning OPS_NEED_SNAPSHOT; it
 * is called again, with fresh set, once the snapshot is there. Runs on the
 * caller's event base; never blocks it (lines are bounded, output is buffered).
 */
#ifndef COLO_OPS_SERVER_H
#define COLO_OPS_SERVER_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct evbuffer;
struct metric_set;

enum ops_reply { OPS_DONE, OPS_NEED_SNAPSHOT, OPS_UNKNOWN };

struct ops_server_ops {
    enum ops_reply (*command)(void *ctx, const char *line, bool fresh, struct evbuffer *out);
    void (*refresh)(void *ctx);                         /* take a snapshot, then call snapshot_ready */
    void (*fill)(void *ctx, struct metric_set *m);      /* the latest snapshot, as metrics */
};

struct ops_server_config {
    const char *control_path;   /* NULL: no control socket */
    const char *metrics_addr;   /* NULL: no metrics endpoint; "PORT" or "ADDR:PORT" */
};

struct ops_server;

/* NULL with a one-line reason in err. */
struct ops_server *ops_server_start(struct event_base *base, const struct ops_server_config *cfg,
                                    const struct ops_server_ops *ops, void *ctx, char *err, size_t errlen);
/*
 * For an owner that runs on one thread (the socket modes): snapshots are taken at
 * once, `checkpoint-done` calls checkpoint_done(ctx), `shutdown` breaks base's loop.
 */
struct ops_server *ops_server_start_local(struct event_base *base, const struct ops_server_config *cfg,
                                          void (*fill)(void *ctx, struct metric_set *m),
                                          void (*checkpoint_done)(void *ctx), void *ctx, char *err,
                                          size_t errlen);
void ops_server_free(struct ops_server *s);

void ops_server_snapshot_ready(struct ops_server *s);
void ops_server_broadcast(struct ops_server *s, const char *line);

/*
 * Will the configuration start: the control socket's directory exists and is
 * writable (cli_check_path), the metrics address is valid. -1 with why.
 */
int ops_server_check_config(const struct ops_server_config *cfg, char *err, size_t errlen);

/* Appends "; control socket PATH; metrics on ADDR" (what is configured) to a start line. */
typedef struct _GString GString;
void ops_server_describe(const struct ops_server_config *cfg, GString *line);

/* The metrics address is valid ("PORT" or "ADDR:PORT"); -1 with a one-line reason in err. */
int ops_server_parse_metrics_addr(const char *text, char *addr, size_t addrlen, unsigned *port, char *err,
                                  size_t errlen);

#endif
