/*
 * test_witness_live.c — a real `colo-proxy witness` on 127.0.0.1, driven with
 * the holders' codec (witness_msg.h): its quiet start, a grant and renewals,
 * a second holder refused until the first one's lease and margin are over and
 * granted then, no way back for the first, forged, replayed, truncated and
 * oversized datagrams dropped without a reply and counted, the process still
 * serving, and a release that frees the lease at once.
 *
 * usage: test_witness_live PATH-TO-colo-proxy
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "colo/lease.h"
#include "colo/witness_msg.h"

#define LEASE_MS 500 /* long enough that a loaded host does not break the preconditions */
#define PAIR 42
#define A 0xaaaa
#define B 0xbbbb
#define C 0xcccc
#define MS 1000000ull

static const char *proxy;
static pid_t witness_pid;
static uint64_t spawned; /* before the fork that starts the witness */
static int witness_log = -1; /* its stderr */
static int sock = -1;
static uint8_t key[32];
static char logbuf[65536];
static size_t loglen;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Reads the witness's stderr until `needle` appears after offset `from`, or 10 s pass; its position or NULL. */
static const char *wait_log(const char *needle, size_t from)
{
    uint64_t deadline = now_ns() + 10000 * MS;
    for (;;) {
        logbuf[loglen] = '\0';
        const char *hit = strstr(logbuf + from, needle);
        if (hit)
            return hit;
        struct pollfd p = { .fd = witness_log, .events = POLLIN };
        uint64_t now = now_ns();
        if (now >= deadline || loglen + 1 >= sizeof(logbuf) || poll(&p, 1, (int)((deadline - now) / MS) + 1) <= 0)
            return NULL;
        ssize_t n = read(witness_log, logbuf + loglen, sizeof(logbuf) - 1 - loglen);
        if (n <= 0)
            return NULL;
        loglen += (size_t)n;
    }
}

static int start_witness(void **state)
{
    (void)state;
    char dir[] = "/tmp/colo-witness-test-XXXXXX", keyfile[64];
    if (!mkdtemp(dir))
        return -1;
    snprintf(keyfile, sizeof(keyfile), "%s/key", dir);
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(i * 7 + 3);
    int kf = open(keyfile, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (kf < 0 || write(kf, key, sizeof(key)) != sizeof(key))
        return -1;
    close(kf);
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    spawned = now_ns();
    witness_pid = fork();
    if (witness_pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        char lease[16];
        snprintf(lease, sizeof(lease), "%d", LEASE_MS);
        execl(proxy, proxy, "witness", "--listen", "127.0.0.1:0", "--key-file", keyfile, "--lease-ms", lease,
              (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    witness_log = pipefd[0];
    const char *line = wait_log("listening on udp 127.0.0.1:", 0);
    unlink(keyfile);
    rmdir(dir);
    if (!line) {
        fprintf(stderr, "the witness did not start: %s\n", logbuf);
        return -1;
    }
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                              .sin_port = htons((uint16_t)atoi(line + strlen("listening on udp 127.0.0.1:"))) };
    sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    return sock >= 0 && connect(sock, (struct sockaddr *)&to, sizeof(to)) == 0 ? 0 : -1;
}

static int stop_witness(void **state)
{
    (void)state;
    if (witness_pid > 0 && waitpid(witness_pid, NULL, WNOHANG) == 0) {
        kill(witness_pid, SIGKILL);
        waitpid(witness_pid, NULL, 0);
    }
    close(sock);
    close(witness_log);
    return 0;
}

static void send_bytes(const uint8_t *b, size_t len)
{
    assert_int_equal(send(sock, b, len, 0), (ssize_t)len);
}

static void encode(uint8_t type, uint64_t sender, uint64_t counter, uint8_t out[WITNESS_MSG_LEN])
{
    struct witness_msg m = { .type = type, .pair_id = PAIR, .sender_id = sender, .counter = counter };
    witness_msg_encode(&m, key, sizeof(key), out);
}

/* The next reply for `sender`, within 2 s; fails on anything else. */
static struct witness_msg receive(uint64_t sender, uint64_t counter)
{
    uint8_t buf[WITNESS_MSG_LEN + 1];
    struct pollfd p = { .fd = sock, .events = POLLIN };
    assert_int_equal(poll(&p, 1, 2000), 1);
    ssize_t n = recv(sock, buf, sizeof(buf), 0);
    struct witness_msg r;
    assert_int_equal(witness_reply_check(buf, (size_t)n, key, sizeof(key), PAIR, sender, &r), WITNESS_OK);
    assert_int_equal(r.counter, counter);
    return r;
}

static struct witness_msg ask(uint8_t type, uint64_t sender, uint64_t counter)
{
    uint8_t b[WITNESS_MSG_LEN];
    encode(type, sender, counter, b);
    send_bytes(b, sizeof(b));
    return receive(sender, counter);
}

static uint64_t margin_ns(void)
{
    return lease_margin_ns(LEASE_MS);
}

static uint64_t a_counter = 1, b_counter = 1;

static void test_grants_only_after_its_quiet_start_then_renews(void **state)
{
    (void)state;
    /* The witness started after the fork: whenever it grants, lease + margin must have passed since then. */
    struct witness_msg r;
    int denials = 0;
    while ((r = ask(WITNESS_ACQUIRE, A, a_counter++)).type == WITNESS_DENY) {
        assert_int_equal(r.holder_id, 0);
        assert_true(r.wait_ms > 0 && r.wait_ms <= LEASE_MS + margin_ns() / MS + 1);
        assert_true(++denials < 1000);
        usleep(5000);
    }
    uint64_t granted = now_ns();
    assert_true(granted - spawned >= LEASE_MS * MS + margin_ns());
    printf("witness: first grant %.1f ms after the fork, %d denials before it\n", (double)(granted - spawned) / MS,
           denials);
    assert_int_equal(r.lease_ms, LEASE_MS);
    for (int i = 0; i < 3; i++) {
        usleep(LEASE_MS / 4 * 1000);
        assert_int_equal(ask(WITNESS_ACQUIRE, A, a_counter++).type, WITNESS_GRANT);
    }
}

static void test_takeover_only_after_the_lease_and_its_margin(void **state)
{
    (void)state;
    uint64_t a_last = now_ns();
    assert_int_equal(ask(WITNESS_ACQUIRE, A, a_counter++).type, WITNESS_GRANT);
    struct witness_msg r = ask(WITNESS_ACQUIRE, B, b_counter++);
    uint64_t first_denied = now_ns();
    assert_int_equal(r.type, WITNESS_DENY);
    assert_int_equal(r.holder_id, A);
    assert_true(first_denied - a_last < LEASE_MS * MS); /* precondition: A's lease was still running */
    for (int i = 0; i < 1000 && (r = ask(WITNESS_ACQUIRE, B, b_counter++)).type == WITNESS_DENY; i++)
        usleep(2000);
    uint64_t b_granted = now_ns();
    assert_int_equal(r.type, WITNESS_GRANT);
    assert_int_equal(r.holder_id, B);
    /* The witness took A's last request after a_last, so B's grant cannot come before its lease + margin. */
    assert_true(b_granted - a_last >= LEASE_MS * MS + margin_ns());
    assert_true(b_granted - a_last < LEASE_MS * MS + margin_ns() + 1000 * MS);
    printf("witness: B granted %.1f ms after A's last request (lease %d ms + margin %.1f ms)\n",
           (double)(b_granted - a_last) / MS, LEASE_MS, (double)margin_ns() / MS);
    r = ask(WITNESS_ACQUIRE, A, a_counter++);
    assert_int_equal(r.type, WITNESS_DENY);
    assert_int_equal(r.holder_id, B);
}

static void test_bad_datagrams_are_dropped_counted_and_the_witness_serves_on(void **state)
{
    (void)state;
    uint8_t good[WITNESS_MSG_LEN], bad[WITNESS_MSG_LEN + 120];
    encode(WITNESS_ACQUIRE, B, b_counter, good);
    assert_int_equal(ask(WITNESS_ACQUIRE, B, b_counter++).type, WITNESS_GRANT);
    send_bytes(good, sizeof(good)); /* replayed */
    memcpy(bad, good, sizeof(good));
    bad[WITNESS_MAC_OFFSET + 5] ^= 0x40; /* forged */
    send_bytes(bad, WITNESS_MSG_LEN);
    uint8_t other_key[32] = { 9 };
    struct witness_msg m = { .type = WITNESS_ACQUIRE, .pair_id = PAIR, .sender_id = B, .counter = 1000000 };
    witness_msg_encode(&m, other_key, sizeof(other_key), bad); /* another key */
    send_bytes(bad, WITNESS_MSG_LEN);
    send_bytes(good, 40);               /* truncated */
    memset(bad + WITNESS_MSG_LEN, 0, 120);
    memcpy(bad, good, sizeof(good));
    send_bytes(bad, sizeof(bad));        /* oversized */
    /* Datagrams from one socket are handled in order: the first reply must be this probe's. */
    struct witness_msg r = ask(WITNESS_ACQUIRE, B, b_counter++);
    assert_int_equal(r.type, WITNESS_GRANT);
    size_t from = loglen;
    assert_int_equal(kill(witness_pid, SIGUSR1), 0);
    const char *stats = wait_log("stats: ", from);
    assert_non_null(stats);
    assert_non_null(wait_log("\n", (size_t)(stats - logbuf)));
    assert_non_null(strstr(stats, "rejected: length 2, magic 0, mac 2, type 0, replay 1, full 0, not-ours 0"));
    assert_non_null(strstr(logbuf, "rejected a datagram from 127.0.0.1:"));
    assert_int_equal(waitpid(witness_pid, NULL, WNOHANG), 0);
}

static void test_release_frees_the_lease_at_once(void **state)
{
    (void)state;
    assert_int_equal(ask(WITNESS_ACQUIRE, C, 1).type, WITNESS_DENY);
    assert_int_equal(ask(WITNESS_RELEASE, B, b_counter++).holder_id, 0);
    struct witness_msg r = ask(WITNESS_ACQUIRE, C, 2);
    assert_int_equal(r.type, WITNESS_GRANT);
    assert_int_equal(r.holder_id, C);
}

static void test_stops_cleanly_on_sigterm(void **state)
{
    (void)state;
    int status = 0;
    assert_int_equal(kill(witness_pid, SIGTERM), 0);
    uint64_t deadline = now_ns() + 5000 * MS;
    pid_t done = 0;
    while ((done = waitpid(witness_pid, &status, WNOHANG)) == 0 && now_ns() < deadline)
        usleep(10000);
    assert_int_equal(done, witness_pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    witness_pid = 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH-TO-colo-proxy\n", argv[0]);
        return 2;
    }
    proxy = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grants_only_after_its_quiet_start_then_renews),
        cmocka_unit_test(test_takeover_only_after_the_lease_and_its_margin),
        cmocka_unit_test(test_bad_datagrams_are_dropped_counted_and_the_witness_serves_on),
        cmocka_unit_test(test_release_frees_the_lease_at_once),
        cmocka_unit_test(test_stops_cleanly_on_sigterm),
    };
    return cmocka_run_group_tests_name("witness_live", tests, start_witness, stop_witness);
}
