/*
 * sock_endpoint.h — how the test and benchmark tools name a socket: a TCP port
 * on 127.0.0.1, or a unix socket path when the name starts with '/'.
 */
#ifndef COLO_TEST_SOCK_ENDPOINT_H
#define COLO_TEST_SOCK_ENDPOINT_H

#include <sys/socket.h>

/* Fills the address for `where`. */
void sock_endpoint_addr(const char *where, struct sockaddr_storage *ss, socklen_t *len);

/* Connects to `where`, retrying for five seconds (TCP_NODELAY on TCP); exits 2 naming `tool` if nobody listens. */
int sock_endpoint_connect(const char *where, const char *tool);

#endif
