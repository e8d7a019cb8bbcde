/*
 * test_qemu_colo.c — checkpoints with a real QEMU 7.2 COLO pair.
 *
 * tests/qemu/run.sh starts the pair (tests/qemu/colo_pair.py: two
 * `qemu-system-x86_64 -M none`, x-colo, migrated into the `colo` state, a
 * periodic checkpoint every 2 s) and runs this with the primary's spare QMP
 * socket. The data plane runs on ring ports; its control thread talks QMP.
 * A checkpoint can only complete here through QEMU's STOP/RESUME.
 *
 *   test_qemu_colo unix:/path/to/proxy.qmp
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "colo/checkpoint_ctl.h"
#include "colo/control.h"
#include "colo/ops_server.h"
#include "colo/heartbeat.h"
#include "colo/pipeline.h"
#include "frame_builder.h"

static const char *qmp_address;
static unsigned serial;

struct rig {
    struct rte_mempool *pool;
    struct rte_ring *rx[PORT_ROLE_COUNT], *tx[PORT_ROLE_COUNT];
    struct pipeline *p;
    struct control *ctl;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Ring ports for a role (the secondary with a client port, so it can take over). */
static void rig_up_as(struct rig *r, enum colo_role role, uint32_t compare_timeout_ms, uint32_t heartbeat_ms)
{
    memset(r, 0, sizeof(*r));
    serial++;
    char name[48];
    snprintf(name, sizeof(name), "qpool%u", serial);
    uint16_t priv = (uint16_t)RTE_ALIGN(sizeof(struct colo_pkt), RTE_MBUF_PRIV_ALIGN);
    r->pool = rte_pktmbuf_pool_create(name, 1024, 0, priv, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    struct pipeline_config cfg;
    pipeline_config_default(&cfg);
    cfg.role = role;
    cfg.heartbeat_ms = heartbeat_ms; /* 0 where frames on the link are counted */
    cfg.nb_mbufs = 2048;
    cfg.compare.max_conns = 1024;
    cfg.compare.compare_timeout_ms = compare_timeout_ms;
    char ids[PORT_ROLE_COUNT][8];
    for (int i = 0; i < PORT_ROLE_COUNT; i++) {
        if (i == (role == ROLE_PRIMARY ? PORT_SVM : PORT_PVM))
            continue;
        snprintf(name, sizeof(name), "q%u_%d_rx", serial, i);
        r->rx[i] = rte_ring_create(name, 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
        snprintf(name, sizeof(name), "q%u_%d_tx", serial, i);
        r->tx[i] = rte_ring_create(name, 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
        snprintf(name, sizeof(name), "q%u_%d", serial, i);
        snprintf(ids[i], sizeof(ids[i]), "%d", rte_eth_from_rings(name, &r->rx[i], 1, &r->tx[i], 1, 0));
        cfg.port_name[i] = ids[i];
    }
    char err[256];
    r->p = pipeline_create(&cfg, err, sizeof(err));
    if (!r->p)
        fail_msg("%s", err);
    struct checkpoint_ctl_config q;
    checkpoint_ctl_config_default(&q);
    q.qmp = qmp_address;
    q.period_ms = 2000; /* keep QEMU's period as the pair was started */
    struct ops_server_config no_ops = { NULL, NULL };
    struct control_config cc = { &no_ops, &q, NULL, NULL, NULL };
    r->ctl = control_start(&cc, pipeline_ring_to_dataplane(r->p),
                           pipeline_ring_from_dataplane(r->p), err, sizeof(err));
    if (!r->ctl)
        fail_msg("%s", err);
}

static void rig_up(struct rig *r, uint32_t compare_timeout_ms)
{
    rig_up_as(r, ROLE_PRIMARY, compare_timeout_ms, 0);
}

static void rig_down(struct rig *r)
{
    pipeline_stop(r->p);
    pipeline_run(r->p); /* drains, tells the control thread it stopped */
    control_stop(r->ctl);
    pipeline_destroy(r->p);
    for (int i = 0; i < PORT_ROLE_COUNT; i++) {
        void *m;
        while (r->tx[i] && rte_ring_dequeue(r->tx[i], &m) == 0)
            rte_pktmbuf_free(m);
    }
    rte_mempool_free(r->pool);
}

static void inject(struct rig *r, enum port_role port, uint32_t seq, const char *data)
{
    struct frame_spec s = frame_guest_tcp(seq, 101, TCPF_ACK | TCPF_PSH, data, (uint32_t)strlen(data));
    struct rte_mbuf *m = rte_pktmbuf_alloc(r->pool);
    size_t len = frame_build(&s, rte_pktmbuf_mtod(m, uint8_t *), 2048);
    m->data_len = m->pkt_len = (uint32_t)len;
    assert_int_equal(rte_ring_enqueue(r->rx[port], m), 0);
}

/* Steps the loop until `want` frames left on the client port; returns the seconds it took. */
static double wait_released(struct rig *r, unsigned want, double limit_s, uint32_t *seqs)
{
    double t0 = now_s();
    unsigned got = 0;
    while (got < want && now_s() - t0 < limit_s) {
        pipeline_poll_once(r->p);
        void *m;
        while (rte_ring_dequeue(r->tx[PORT_CLIENT], &m) == 0) {
            const uint8_t *t = rte_pktmbuf_mtod((struct rte_mbuf *)m, const uint8_t *) + 34;
            seqs[got++] = (uint32_t)t[4] << 24 | (uint32_t)t[5] << 16 | (uint32_t)t[6] << 8 | t[7];
            rte_pktmbuf_free(m);
        }
        usleep(200);
    }
    assert_int_equal(got, want);
    return now_s() - t0;
}

static void wait_for_colo(struct rig *r)
{
    /* The control thread connects and asks for the COLO status; give it a moment. */
    double t0 = now_s();
    while (now_s() - t0 < 1.0) {
        pipeline_poll_once(r->p);
        usleep(1000);
    }
}

static void test_divergence_gets_a_real_checkpoint(void **state)
{
    (void)state;
    struct rig r;
    rig_up(&r, 60000);
    wait_for_colo(&r);
    inject(&r, PORT_PVM, 1000, "date: 10:00:01 ");
    inject(&r, PORT_PVM, 1015, "next");
    inject(&r, PORT_LINK, 1000, "date: 10:00:02 ");
    uint32_t seqs[2];
    double took = wait_released(&r, 2, 1.5, seqs); /* well before QEMU's 2 s period */
    assert_int_equal(seqs[0], 1000);
    assert_int_equal(seqs[1], 1015);
    struct pipeline_stats st;
    pipeline_stats_snapshot(r.p, &st);
    assert_int_equal(st.compare.checkpoint_requests[CKPT_DIVERGENCE], 1);
    assert_true(st.compare.checkpoints_done >= 1);
    assert_int_equal(st.compare.released[RELEASE_CHECKPOINT], 2);
    print_message("divergence to release through QEMU's checkpoint: %.0f ms\n", took * 1000);
    rig_down(&r);
}

static void test_periodic_checkpoint_flushes_like_a_requested_one(void **state)
{
    (void)state;
    struct rig r;
    rig_up(&r, 60000);
    wait_for_colo(&r);
    inject(&r, PORT_PVM, 5000, "the SVM never says this");
    uint32_t seqs[1];
    double took = wait_released(&r, 1, 5.0, seqs);
    struct pipeline_stats st;
    pipeline_stats_snapshot(r.p, &st);
    uint64_t requests = 0;
    for (int i = 0; i < CKPT_REASON_COUNT; i++)
        requests += st.compare.checkpoint_requests[i];
    assert_int_equal(requests, 0); /* nothing asked: QEMU's own period did it */
    assert_true(st.compare.checkpoints_done >= 1);
    assert_true(st.signals.qmp_began >= 1); /* QMP's STOP reached the data plane */
    assert_true(st.signals.qmp_done >= 1);  /* and RESUME, with QEMU's STOP to RESUME */
    assert_true(st.signals.last_qmp_ns > 0);
    print_message("held frame released by QEMU's periodic checkpoint after %.0f ms (STOP to RESUME %.1f ms)\n",
                  took * 1000, (double)st.signals.last_qmp_ns / 1e6);
    rig_down(&r);
}

/*
 * The secondary colo-proxy (with the secondary QEMU's spare QMP) hears the primary
 * once on the link and the client side, then nothing: it takes over and tells QEMU
 * x-colo-lost-heartbeat. run.sh then checks query-colo-status on the secondary.
 */
static void test_secondary_takeover_reaches_qemu(void **state)
{
    (void)state;
    struct rig r;
    rig_up_as(&r, ROLE_SECONDARY, 3000, 5);
    wait_for_colo(&r);
    struct heartbeat primary;
    heartbeat_init(&primary, 0, 5, 4);
    for (int port = PORT_CLIENT; port <= PORT_LINK; port += PORT_LINK - PORT_CLIENT) {
        struct rte_mbuf *m = rte_pktmbuf_alloc(r.pool);
        primary.next_send_ns = 0;
        assert_true(heartbeat_due(&primary, rte_pktmbuf_mtod(m, uint8_t *), 1));
        m->data_len = m->pkt_len = HEARTBEAT_FRAME_LEN;
        assert_int_equal(rte_ring_enqueue(r.rx[port], m), 0);
    }
    double t0 = now_s();
    struct pipeline_stats st;
    do {
        pipeline_poll_once(r.p);
        usleep(500);
        pipeline_stats_snapshot(r.p, &st);
    } while (!st.taken_over && now_s() - t0 < 2.0);
    assert_true(st.taken_over);
    print_message("takeover %.0f ms after the primary's last heartbeat\n", (now_s() - t0) * 1000);
    t0 = now_s();
    while (now_s() - t0 < 0.5) { /* the control thread sends x-colo-lost-heartbeat */
        pipeline_poll_once(r.p);
        usleep(1000);
    }
    rig_down(&r);
}

int main(int argc, char **argv)
{
    bool takeover = argc == 3 && strcmp(argv[1], "--takeover") == 0;
    if (argc != 2 && !takeover) {
        fprintf(stderr, "usage: test_qemu_colo unix:/path/to/proxy.qmp\n"
                        "       test_qemu_colo --takeover unix:/path/to/secondary-proxy.qmp\n");
        return 2;
    }
    qmp_address = argv[argc - 1];
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "--file-prefix=colo-qemu-%d", getpid());
    char *eal_args[] = { "test_qemu_colo", "--no-huge", "-m", "256", "--no-pci", "--no-shconf",
                         "--no-telemetry", "--log-level=error", "-l", "0", prefix };
    if (rte_eal_init((int)(sizeof(eal_args) / sizeof(eal_args[0])), eal_args) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_divergence_gets_a_real_checkpoint),
        cmocka_unit_test(test_periodic_checkpoint_flushes_like_a_requested_one),
    };
    const struct CMUnitTest takeover_tests[] = {
        cmocka_unit_test(test_secondary_takeover_reaches_qemu),
    };
    int rc = takeover ? cmocka_run_group_tests_name("qemu_colo_takeover", takeover_tests, NULL, NULL)
                      : cmocka_run_group_tests_name("qemu_colo", tests, NULL, NULL);
    rte_eal_cleanup();
    return rc;
}
