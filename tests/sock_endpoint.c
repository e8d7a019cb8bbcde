/*
 * sock_endpoint.c — socket names for the test and benchmark tools (see sock_endpoint.h).
 */
#include "sock_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#define CONNECT_TRIES 100
#define CONNECT_PAUSE_US 50000

void sock_endpoint_addr(const char *where, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (where[0] == '/') {
        struct sockaddr_un *u = (struct sockaddr_un *)ss;
        u->sun_family = AF_UNIX;
        snprintf(u->sun_path, sizeof(u->sun_path), "%s", where);
        *len = sizeof(*u);
        return;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)atoi(where));
    inet_pton(AF_INET, "127.0.0.1", &a->sin_addr);
    *len = sizeof(*a);
}

int sock_endpoint_connect(const char *where, const char *tool)
{
    struct sockaddr_storage ss;
    socklen_t len;
    sock_endpoint_addr(where, &ss, &len);
    for (int tries = 0; tries < CONNECT_TRIES; tries++) {
        int fd = socket(ss.ss_family, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
            int one = 1;
            if (ss.ss_family == AF_INET)
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            return fd;
        }
        close(fd);
        usleep(CONNECT_PAUSE_US);
    }
    fprintf(stderr, "%s: nothing listens on %s\n", tool, where);
    exit(2);
}
