/*
 * socket_ceiling.c — the plain relay of bench/run and bench/run-socket: what this
 * machine moves through colo-compare's three sockets when nothing is compared.
 *
 *   socket_ceiling PRIMARY_IN SECONDARY_IN OUTDEV
 *
 * Listens on the three endpoints (a TCP port on 127.0.0.1, or a unix socket path
 * when it starts with '/'), like a colo-compare. Every byte from PRIMARY_IN is
 * written to OUTDEV as it came (the records pass through whole), SECONDARY_IN is
 * read and thrown away, in large reads, with poll(). No parsing, no queues. It is
 * a reference, not an upper bound: it blocks in write() until OUTDEV takes what
 * it read, so with small records a proxy that batches its reads and writes can
 * move more records per second than this relay does.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sock_endpoint.h"

#define BUF_BYTES (1u << 20)

static int listen_on(const char *where)
{
    struct sockaddr_storage ss;
    socklen_t len;
    sock_endpoint_addr(where, &ss, &len);
    if (where[0] == '/')
        unlink(where);
    int fd = socket(ss.ss_family, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1) != 0) {
        fprintf(stderr, "socket_ceiling: cannot listen on %s: %s\n", where, strerror(errno));
        exit(2);
    }
    return fd;
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            exit(0);
        p += w;
        n -= (size_t)w;
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: socket_ceiling PRIMARY_IN SECONDARY_IN OUTDEV\n");
        return 2;
    }
    int lp = listen_on(argv[1]), ls = listen_on(argv[2]), lo = listen_on(argv[3]);
    int out = accept(lo, NULL, NULL), pin = accept(lp, NULL, NULL), sin = accept(ls, NULL, NULL);
    uint8_t *buf = malloc(BUF_BYTES);
    for (;;) {
        struct pollfd p[2] = { { pin, POLLIN, 0 }, { sin, POLLIN, 0 } };
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            return 1;
        if (p[0].revents) {
            ssize_t n = read(pin, buf, BUF_BYTES);
            if (n <= 0)
                return 0;
            write_all(out, buf, (size_t)n);
        }
        if (p[1].revents && read(sin, buf, BUF_BYTES) <= 0)
            return 0;
    }
}
