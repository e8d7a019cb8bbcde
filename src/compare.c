/*
 * compare.c — the generic compare engine: queues, release, timeouts, checkpoints.
 *
 * Owns: per-connection PVM queues (arrival order) and SVM queues (the rule set
 * chooses the order), the engine-wide age list of held PVM packets (oldest first,
 * so the compare timeout is checked in O(1) and fires within one tick of its
 * deadline), the list of connections touched since the last checkpoint (so a
 * checkpoint costs O(touched), not O(table)), and the "checkpoint pending" latch
 * that makes every divergence episode produce exactly one request, and the
 * "alone" state after a failover, in which nothing is compared or requested, and
 * the SVM epochs made stale by the last checkpoint (when the secondary marks them).
 *
 * Invariants: a PVM packet is in exactly one queue (its connection's, or the
 * orphan queue when the table had no room) and in the age list until it is
 * released; release always takes the head of a queue, so per-connection order
 * is arrival order. Nothing here drops a PVM packet.
 *
 * Time: every entry point's `now` passes through engine_now, so the engine's
 * clock never goes back (a stepped wall clock, a capture's unsorted frames)
 * and no deadline wraps (sums saturate). The connection table counts seconds
 * in 32 bits modulo 2^32, so it is shown a clock of its own whose steps are cut
 * to just over the longest connection timeout: a longer gap expires every idle
 * connection whatever its length. A gap therefore costs the same however long.
 */
#include "compare_internal.h"

#include <stdlib.h>
#include <string.h>

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull
#define EXPIRE_BUDGET_PER_SCAN 65536
#define ORPHAN_BLOOM_WORDS 1024 /* 65536 bits */

struct colo_compare {
    struct colo_compare_config cfg;
    struct colo_compare_ops ops;
    void *ctx;
    struct conn_table *table;
    struct colo_pkt *age_head, *age_tail;       /* held PVM packets, oldest first */
    struct colo_pkt *orphan_head, *orphan_tail; /* PVM packets the table had no room for */
    uint64_t orphan_keys[ORPHAN_BLOOM_WORDS];   /* a Bloom filter of the orphans' flow hashes */
    uint32_t *dirty;                            /* ids of connections touched since the last checkpoint */
    uint32_t dirty_len, dirty_cap;
    uint64_t now;                               /* the time of the call being served */
    struct bypass_rules next_bypass;            /* rules waiting for nothing to be held */
    bool bypass_waiting;
    bool checkpoint_pending;
    bool alone;                                 /* the secondary is gone: PVM packets pass straight */
    bool epochs_on;                             /* stale_through holds a real epoch */
    uint32_t stale_through;                     /* SVM packets of epochs up to this one are stale */
    bool requested_before;                      /* last_request_ns holds a real time */
    bool request_deferred;                      /* wanted, but too soon after the last request */
    enum checkpoint_reason deferred_why;
    uint64_t last_request_ns, min_interval_ns;
    uint64_t timeout_ns;
    uint64_t next_scan_ns;
    bool clock_started;                         /* clock_s holds a real time */
    uint64_t clock_s;                           /* the caller's seconds at the last call */
    uint32_t table_s;                           /* the table's seconds: steps cut to table_step_max_s */
    uint32_t table_step_max_s;
    struct colo_compare_stats stats;
};

void colo_compare_config_default(struct colo_compare_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg)); /* no bypass rules, and nothing left to chance */
    cfg->compare_timeout_ms = 3000;
    cfg->expired_scan_cycle_ms = 1000;
    cfg->max_queue_size = 1024;
    cfg->max_conns = 1u << 20;
    conn_timeouts_default(&cfg->timeouts);
}

static void discard_svm_queue(struct colo_compare *c, struct conn *conn)
{
    while (conn->stream.svm_head) {
        struct colo_pkt *p = conn->stream.svm_head;
        compare_svm_unlink_head(c, conn);
        c->stats.svm_flushed++;
        c->ops.discard(c->ctx, p);
    }
}

static bool epoch_stale(const struct colo_compare *c, uint32_t epoch)
{
    return c->epochs_on && (int32_t)(epoch - c->stale_through) <= 0;
}

/* Discards the SVM packets of stale epochs, keeping the others in their order; true when some stay. */
static bool discard_stale_svm(struct colo_compare *c, struct conn *conn)
{
    struct conn_stream *s = &conn->stream;
    struct colo_pkt **link = &s->svm_head, *last = NULL;
    while (*link) {
        struct colo_pkt *q = *link;
        if (!epoch_stale(c, q->epoch)) {
            last = q;
            link = &q->next;
            continue;
        }
        *link = q->next;
        q->next = NULL;
        s->svm_count--;
        c->stats.svm_held--;
        c->stats.svm_flushed++;
        c->ops.discard(c->ctx, q);
    }
    s->svm_tail = last;
    c->stats.svm_kept_new_epoch += s->svm_count;
    return s->svm_head != NULL;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

#define TABLE_STEP_LIMIT_S (1u << 30) /* far below 2^31: the table's comparisons stay right */

/* Just over the longest connection timeout: a step that long expires every idle connection. */
static uint32_t table_step_max(const struct conn_timeouts *t)
{
    uint32_t m = t->handshake_s;
    const uint32_t others[] = { t->tcp_established_s, t->closing_s, t->closed_s, t->datagram_s };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        if (others[i] > m)
            m = others[i];
    return m < TABLE_STEP_LIMIT_S ? m + 1 : TABLE_STEP_LIMIT_S;
}

/* The engine's time for a call made at `now`: never earlier than the last call's; moves the table's clock. */
static uint64_t engine_now(struct colo_compare *c, uint64_t now)
{
    if (now < c->now)
        now = c->now;
    uint64_t s = now / NS_PER_S;
    if (!c->clock_started) {
        c->table_s = (uint32_t)s;
        c->clock_started = true;
    } else {
        uint64_t step = s - c->clock_s;
        c->table_s += step < c->table_step_max_s ? (uint32_t)step : c->table_step_max_s;
    }
    c->clock_s = s;
    c->now = now;
    return now;
}

static void on_conn_evicted(void *ctx, struct conn *conn)
{
    discard_svm_queue(ctx, conn);
}

static bool conn_holds_pvm_packets(const struct conn *conn)
{
    return conn->stream.pvm_count != 0;
}

struct colo_compare *colo_compare_create(const struct colo_compare_config *cfg,
                                         const struct colo_compare_ops *ops, void *ctx)
{
    struct colo_compare *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->cfg = *cfg;
    c->ops = *ops;
    c->ctx = ctx;
    c->timeout_ns = (uint64_t)cfg->compare_timeout_ms * NS_PER_MS;
    c->min_interval_ns = (uint64_t)cfg->checkpoint_min_interval_ms * NS_PER_MS;
    c->table_step_max_s = table_step_max(&cfg->timeouts);
    c->dirty_cap = cfg->max_conns * 2;
    c->dirty = malloc(sizeof(uint32_t) * c->dirty_cap);
    c->table = conn_table_create(cfg->max_conns, &cfg->timeouts, conn_holds_pvm_packets,
                                 on_conn_evicted, c);
    if (!c->table || !c->dirty) {
        colo_compare_destroy(c);
        return NULL;
    }
    return c;
}

void colo_compare_destroy(struct colo_compare *c)
{
    if (!c)
        return;
    if (c->table)
        colo_compare_release_all(c);
    conn_table_destroy(c->table);
    free(c->dirty);
    free(c);
}

static const struct compare_proto *proto_for(const struct flow_key *k)
{
    if (k->family != FAMILY_OTHER && k->proto == 6 && !k->fragment)
        return &compare_proto_tcp;
    return &compare_proto_datagram;
}

static bool too_soon(const struct colo_compare *c, uint64_t now)
{
    return c->min_interval_ns && c->requested_before && now - c->last_request_ns < c->min_interval_ns;
}

/* Once per episode, and never sooner than checkpoint_min_interval after the last: then it waits (counted). */
static void request_checkpoint(struct colo_compare *c, enum checkpoint_reason why, uint64_t now)
{
    if (c->checkpoint_pending || c->alone)
        return;
    if (too_soon(c, now)) {
        if (!c->request_deferred)
            c->stats.checkpoint_requests_deferred++;
        c->request_deferred = true;
        c->deferred_why = why;
        return;
    }
    c->request_deferred = false;
    c->last_request_ns = now;
    c->requested_before = true;
    c->checkpoint_pending = true;
    c->stats.checkpoint_requests[why]++;
    c->ops.request_checkpoint(c->ctx, why, now);
}

void compare_diverge(struct colo_compare *c, struct conn *conn, struct divergence *d)
{
    conn->stream.flags |= CMPF_DIVERGED;
    d->conn = conn;
    c->stats.divergences[d->kind]++;
    if (c->ops.divergence)
        c->ops.divergence(c->ctx, d);
    request_checkpoint(c, CKPT_DIVERGENCE, d->pvm_pkt ? d->pvm_pkt->arrival_ns : 0);
}

/* ---- the age list of held PVM packets ---- */

static void age_append(struct colo_compare *c, struct colo_pkt *p)
{
    p->age_next = NULL;
    p->age_prev = c->age_tail;
    if (c->age_tail)
        c->age_tail->age_next = p;
    else
        c->age_head = p;
    c->age_tail = p;
    if (++c->stats.pvm_held > c->stats.pvm_held_max)
        c->stats.pvm_held_max = c->stats.pvm_held;
}

static void age_unlink(struct colo_compare *c, struct colo_pkt *p)
{
    if (p->age_prev)
        p->age_prev->age_next = p->age_next;
    else
        c->age_head = p->age_next;
    if (p->age_next)
        p->age_next->age_prev = p->age_prev;
    else
        c->age_tail = p->age_prev;
    c->stats.pvm_held--;
}

static void release(struct colo_compare *c, struct colo_pkt *p, enum release_reason why)
{
    age_unlink(c, p);
    c->stats.released[why]++;
    latency_hist_record(&c->stats.hold, c->now > p->arrival_ns ? c->now - p->arrival_ns : 0);
    c->ops.release(c->ctx, p, why);
}

/* ---- per-connection queues ---- */

static void pvm_append(struct colo_compare *c, struct conn *conn, struct colo_pkt *p)
{
    struct conn_stream *s = &conn->stream;
    if (s->pvm_tail)
        s->pvm_tail->next = p;
    else
        s->pvm_head = p;
    s->pvm_tail = p;
    if (!s->pvm_cmp)
        s->pvm_cmp = p;
    s->pvm_count++;
    age_append(c, p);
}

static struct colo_pkt *pvm_pop_head(struct conn *conn)
{
    struct conn_stream *s = &conn->stream;
    struct colo_pkt *p = s->pvm_head;
    s->pvm_head = p->next;
    if (!s->pvm_head)
        s->pvm_tail = NULL;
    if (s->pvm_cmp == p)
        s->pvm_cmp = p->next;
    s->pvm_count--;
    p->next = NULL;
    return p;
}

void compare_svm_link(struct colo_compare *c, struct conn *conn, struct colo_pkt *after,
                      struct colo_pkt *p)
{
    struct conn_stream *s = &conn->stream;
    if (after) {
        p->next = after->next;
        after->next = p;
    } else {
        p->next = s->svm_head;
        s->svm_head = p;
    }
    if (!p->next)
        s->svm_tail = p;
    s->svm_count++;
    c->stats.svm_held++;
}

void compare_svm_unlink_head(struct colo_compare *c, struct conn *conn)
{
    struct conn_stream *s = &conn->stream;
    struct colo_pkt *p = s->svm_head;
    s->svm_head = p->next;
    if (!s->svm_head)
        s->svm_tail = NULL;
    s->svm_count--;
    c->stats.svm_held--;
    p->next = NULL;
}

void compare_svm_done(struct colo_compare *c, struct colo_pkt *p, enum svm_fate fate)
{
    if (fate == SVM_MATCHED)
        c->stats.svm_matched++;
    else if (fate == SVM_STALE)
        c->stats.svm_stale++;
    else
        c->stats.svm_uncompared++;
    c->ops.discard(c->ctx, p);
}

static void release_ready(struct colo_compare *c, struct conn *conn,
                          const struct compare_proto *proto)
{
    enum release_reason why;
    while (conn->stream.pvm_head && proto->releasable(conn, conn->stream.pvm_head, &why))
        release(c, pvm_pop_head(conn), why);
}

/*
 * Entries of evicted connections are stale, and when an evicted connection's slot
 * was reused, several entries name the same live connection: keep each dirty
 * connection once (CMPF_LISTED marks it during the pass). At most max_conns remain.
 */
static void compact_dirty(struct colo_compare *c)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < c->dirty_len; i++) {
        struct conn *d = conn_by_id(c->table, c->dirty[i]);
        if (d && (d->stream.flags & CMPF_DIRTY) && !(d->stream.flags & CMPF_LISTED)) {
            d->stream.flags |= CMPF_LISTED;
            c->dirty[kept++] = c->dirty[i];
        }
    }
    for (uint32_t i = 0; i < kept; i++)
        conn_by_id(c->table, c->dirty[i])->stream.flags &= (uint16_t)~CMPF_LISTED;
    c->dirty_len = kept;
}

static void mark_dirty(struct colo_compare *c, struct conn *conn)
{
    if (conn->stream.flags & CMPF_DIRTY)
        return;
    if (c->dirty_len == c->dirty_cap)
        compact_dirty(c);
    conn->stream.flags |= CMPF_DIRTY;
    c->dirty[c->dirty_len++] = conn_id(c->table, conn);
}

/* ---- input ---- */

static void bloom_bits(uint32_t hash, uint32_t bit[2])
{
    bit[0] = hash & 0xffff;
    bit[1] = (hash >> 16 ^ hash * 0x9e3779b1u >> 16) & 0xffff;
}

static void orphan_key_add(struct colo_compare *c, uint32_t hash)
{
    uint32_t bit[2];
    bloom_bits(hash, bit);
    for (int i = 0; i < 2; i++)
        c->orphan_keys[bit[i] / 64] |= 1ull << (bit[i] % 64);
}

static bool orphan_key_maybe(const struct colo_compare *c, uint32_t hash)
{
    uint32_t bit[2];
    bloom_bits(hash, bit);
    return (c->orphan_keys[bit[0] / 64] >> (bit[0] % 64) & 1) && (c->orphan_keys[bit[1] / 64] >> (bit[1] % 64) & 1);
}

static void hold_orphan(struct colo_compare *c, struct colo_pkt *p, uint32_t hash)
{
    orphan_key_add(c, hash);
    if (c->orphan_tail)
        c->orphan_tail->next = p;
    else
        c->orphan_head = p;
    c->orphan_tail = p;
    age_append(c, p);
    request_checkpoint(c, CKPT_TABLE_FULL, p->arrival_ns);
}

static void observe(struct conn_table *t, struct conn *conn, const struct pkt_view *v, uint32_t now_s)
{
    if (conn->key.proto == 6 && !conn->key.fragment && conn->key.family != FAMILY_OTHER)
        conn_observe_tcp(t, conn, v->tcp_flags, true, now_s);
    else
        conn_observe(conn, now_s);
}

static void input_one(struct colo_compare *c, enum colo_side side, struct colo_pkt *p,
                      struct conn *conn, uint64_t now)
{
    const struct compare_proto *proto = proto_for(&conn->key);
    struct conn_stream *s = &conn->stream;
    observe(c->table, conn, &p->view, c->table_s);
    mark_dirty(c, conn);
    if (side == SIDE_PVM) {
        pvm_append(c, conn, p);
        proto->pvm_arrived(c, conn, p);
        if (s->pvm_count > c->cfg.max_queue_size)
            request_checkpoint(c, CKPT_QUEUE_FULL, now);
    } else {
        if (s->svm_count >= c->cfg.max_queue_size)
            request_checkpoint(c, CKPT_QUEUE_FULL, now);
        proto->svm_arrived(c, conn, p);
    }
    if (!(s->flags & CMPF_DIVERGED))
        proto->advance(c, conn);
    release_ready(c, conn, proto);
}

static uint64_t scan_cycle_ns(const struct colo_compare *c)
{
    return (uint64_t)c->cfg.expired_scan_cycle_ms * NS_PER_MS;
}

static void prepare(struct colo_compare *c, enum colo_side side, struct colo_pkt *p,
                    uint64_t now)
{
    if (!c->next_scan_ns)
        c->next_scan_ns = sat_add(now, scan_cycle_ns(c));
    p->arrival_ns = now;
    p->next = NULL;
    p->cmp_flags = 0;
    if (p->view.status != PARSE_OK && p->view.status < PARSE_STATUS_COUNT)
        c->stats.malformed[p->view.status]++;
    if (side == SIDE_PVM)
        c->stats.pvm_in++;
    else
        c->stats.svm_in++;
}

/* Uncompared: a PVM packet leaves at once for why; an SVM packet is dropped and counted in svm_dropped. */
static void let_through(struct colo_compare *c, enum colo_side side, struct colo_pkt *p, enum release_reason why,
                        uint64_t *svm_dropped)
{
    if (side == SIDE_PVM) {
        c->stats.released[why]++;
        latency_hist_record(&c->stats.hold, 0);
        c->ops.release(c->ctx, p, why);
    } else {
        (*svm_dropped)++;
        c->ops.discard(c->ctx, p);
    }
}

/* A frame of a bypassed flow leaves at once (PVM) or is dropped (SVM), never queued: order holds. */
static bool bypassed(struct colo_compare *c, enum colo_side side, struct colo_pkt *p)
{
    int rule = bypass_match(&c->cfg.bypass, &p->view);
    if (rule < 0)
        return false;
    c->stats.bypass_hits[rule]++;
    let_through(c, side, p, RELEASE_BYPASSED, &c->stats.svm_bypassed);
    return true;
}

/* An SVM packet sent before the SVM resumed from the last checkpoint: stale, discarded. */
static bool stale_on_arrival(struct colo_compare *c, enum colo_side side, struct colo_pkt *p)
{
    if (side != SIDE_SVM || !epoch_stale(c, p->epoch))
        return false;
    c->stats.svm_stale_epoch++;
    c->ops.discard(c->ctx, p);
    return true;
}

/* Alone: a PVM packet leaves as it comes (nothing is held, so order holds); an SVM packet is dropped. */
static void pass_alone(struct colo_compare *c, enum colo_side side, struct colo_pkt *p)
{
    let_through(c, side, p, RELEASE_ALONE, &c->stats.svm_alone);
}

static void input_with_conn(struct colo_compare *c, enum colo_side side, struct colo_pkt *p,
                            struct conn *conn, uint32_t hash, uint64_t now)
{
    if (conn) {
        if (conn->stream.pvm_count == 0 && conn->stream.svm_count == 0 &&
            conn->stream.flags == 0)
            conn->guest_is_1 = p->view.dir_swapped;
        input_one(c, side, p, conn, now);
    } else if (side == SIDE_PVM) {
        hold_orphan(c, p, hash);
    } else {
        c->stats.svm_untracked++;
        c->ops.discard(c->ctx, p);
    }
}

/*
 * A packet of a connection that has orphans (PVM packets the full table had no
 * room for) must not overtake them by finding an entry freed meanwhile: while
 * orphans wait, a connection whose key may be among theirs (the Bloom filter
 * says so) is not created, and its packets become orphans too. Other new
 * connections are created as usual. The checkpoint that releases the orphans
 * clears the filter.
 */
static struct conn *find_conn(struct colo_compare *c, const struct pkt_view *v, uint32_t hash)
{
    if (c->orphan_head && orphan_key_maybe(c, hash))
        return conn_lookup(c->table, &v->key, hash);
    return conn_lookup_or_create(c->table, &v->key, hash, c->table_s);
}

void colo_compare_input(struct colo_compare *c, enum colo_side side, struct colo_pkt *p,
                        uint64_t now)
{
    now = engine_now(c, now);
    prepare(c, side, p, now);
    if (c->alone) {
        pass_alone(c, side, p);
        return;
    }
    if (stale_on_arrival(c, side, p) || (c->cfg.bypass.count && bypassed(c, side, p)))
        return;
    uint32_t hash = conn_hash(c->table, &p->view.key);
    input_with_conn(c, side, p, find_conn(c, &p->view, hash), hash, now);
}

#define BURST_MAX 64

/* A burst often carries runs of one flow: the keyed hash is computed once per run. */
static uint32_t burst_hash(const struct colo_compare *c, struct colo_pkt **pkts, const uint32_t *hashes, unsigned i)
{
    const struct flow_key *k = &pkts[i]->view.key;
    if (i && memcmp(&pkts[i - 1]->view.key, k, sizeof(*k)) == 0)
        return hashes[i - 1];
    return conn_hash(c->table, k);
}

void colo_compare_input_burst(struct colo_compare *c, enum colo_side side,
                              struct colo_pkt **pkts, unsigned n, uint64_t now)
{
    uint32_t hashes[BURST_MAX];
    now = engine_now(c, now);
    if (c->alone) {
        for (unsigned i = 0; i < n; i++) {
            prepare(c, side, pkts[i], now);
            pass_alone(c, side, pkts[i]);
        }
        return;
    }
    while (n) {
        unsigned chunk = n < BURST_MAX ? n : BURST_MAX;
        for (unsigned i = 0; i < chunk; i++) {
            hashes[i] = burst_hash(c, pkts, hashes, i);
            conn_prefetch_slots(c->table, hashes[i]);
        }
        for (unsigned i = 0; i < chunk; i++)
            conn_prefetch_entry(c->table, hashes[i]);
        for (unsigned i = 0; i < chunk; i++) {
            prepare(c, side, pkts[i], now);
            if (stale_on_arrival(c, side, pkts[i]) || (c->cfg.bypass.count && bypassed(c, side, pkts[i])))
                continue;
            input_with_conn(c, side, pkts[i], find_conn(c, &pkts[i]->view, hashes[i]), hashes[i], now);
        }
        pkts += chunk;
        n -= chunk;
    }
}

/* ---- timers ---- */

void colo_compare_tick(struct colo_compare *c, uint64_t now)
{
    now = engine_now(c, now);
    if (c->alone)
        return;
    if (c->request_deferred && !too_soon(c, now))
        request_checkpoint(c, c->deferred_why, now);
    if (!c->checkpoint_pending && c->age_head && now - c->age_head->arrival_ns >= c->timeout_ns)
        request_checkpoint(c, CKPT_TIMEOUT, now);
    if (c->next_scan_ns && now >= c->next_scan_ns) {
        conn_table_expire(c->table, c->table_s, EXPIRE_BUDGET_PER_SCAN);
        c->next_scan_ns = sat_add(now, scan_cycle_ns(c));
    }
}

/* The earliest deadline other than the connection scan's; UINT64_MAX when none. */
static uint64_t next_request_deadline(const struct colo_compare *c)
{
    uint64_t next = UINT64_MAX;
    if (c->request_deferred)
        next = sat_add(c->last_request_ns, c->min_interval_ns);
    if (!c->checkpoint_pending && c->age_head) {
        uint64_t t = sat_add(c->age_head->arrival_ns, c->timeout_ns);
        if (t < next)
            next = t;
    }
    return next;
}

uint64_t colo_compare_next_deadline(const struct colo_compare *c)
{
    if (c->alone)
        return UINT64_MAX;
    uint64_t next = next_request_deadline(c);
    return c->next_scan_ns && c->next_scan_ns < next ? c->next_scan_ns : next;
}

void colo_compare_skip_idle_scans(struct colo_compare *c, uint64_t until)
{
    uint64_t other = next_request_deadline(c);
    if (other < until)
        until = other;
    uint64_t cycle = scan_cycle_ns(c);
    if (c->alone || !c->next_scan_ns || !cycle || until == UINT64_MAX || c->next_scan_ns >= until)
        return;
    c->next_scan_ns += (until - c->next_scan_ns) / cycle * cycle;
}

/* ---- checkpoints ---- */

/* Releases the PVM's packets, discards the SVM's (keep_new_epochs: the stale ones); true when some stay. */
static bool flush_conn(struct colo_compare *c, struct conn *conn, enum release_reason why, bool keep_new_epochs)
{
    while (conn->stream.pvm_head)
        release(c, pvm_pop_head(conn), why);
    bool kept = false;
    if (keep_new_epochs)
        kept = discard_stale_svm(c, conn);
    else
        discard_svm_queue(c, conn);
    proto_for(&conn->key)->resync(conn);
    conn->stream.flags &= (uint16_t)~(CMPF_DIVERGED | CMPF_DIRTY);
    return kept;
}

static void apply_bypass(struct colo_compare *c)
{
    c->cfg.bypass = c->next_bypass;
    memset(c->stats.bypass_hits, 0, sizeof(c->stats.bypass_hits));
    c->bypass_waiting = false;
}

void colo_compare_set_bypass(struct colo_compare *c, const struct bypass_rules *rules)
{
    c->next_bypass = *rules;
    c->bypass_waiting = true;
    if (!c->age_head && !c->orphan_head)
        apply_bypass(c);
}

const struct bypass_rules *colo_compare_bypass(const struct colo_compare *c)
{
    return &c->cfg.bypass;
}

/*
 * Connections that keep SVM packets of a newer epoch stay on the dirty list, once
 * each (CMPF_DIRTY is cleared during the pass, so a second entry for one is skipped).
 */
static void flush_everything(struct colo_compare *c, enum release_reason why, bool keep_new_epochs)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < c->dirty_len; i++) {
        struct conn *conn = conn_by_id(c->table, c->dirty[i]);
        if (conn && (conn->stream.flags & CMPF_DIRTY) && flush_conn(c, conn, why, keep_new_epochs))
            c->dirty[kept++] = c->dirty[i];
    }
    c->dirty_len = kept;
    for (uint32_t i = 0; i < kept; i++)
        conn_by_id(c->table, c->dirty[i])->stream.flags |= CMPF_DIRTY;
    while (c->orphan_head) {
        struct colo_pkt *p = c->orphan_head;
        c->orphan_head = p->next;
        p->next = NULL;
        release(c, p, why);
    }
    if (c->orphan_tail)
        memset(c->orphan_keys, 0, sizeof(c->orphan_keys));
    c->orphan_tail = NULL;
    c->checkpoint_pending = false;
    c->request_deferred = false; /* whatever it was for has just been flushed */
    if (c->bypass_waiting)
        apply_bypass(c);
}

static void checkpoint_flush(struct colo_compare *c, uint64_t now, bool keep_new_epochs)
{
    now = engine_now(c, now);
    if (c->checkpoint_pending && now >= c->last_request_ns)
        latency_hist_record(&c->stats.checkpoint_wait, now - c->last_request_ns);
    c->stats.checkpoints_done++;
    flush_everything(c, RELEASE_CHECKPOINT, keep_new_epochs);
}

void colo_compare_checkpoint_done(struct colo_compare *c, uint64_t now)
{
    checkpoint_flush(c, now, false);
}

void colo_compare_checkpoint_done_epoch(struct colo_compare *c, uint64_t now, uint32_t stale_through)
{
    if (!c->epochs_on || (int32_t)(stale_through - c->stale_through) > 0)
        c->stale_through = stale_through;
    c->epochs_on = true;
    checkpoint_flush(c, now, true);
}

void colo_compare_request_checkpoint(struct colo_compare *c, enum checkpoint_reason why,
                                     uint64_t now)
{
    request_checkpoint(c, why, engine_now(c, now));
}

void colo_compare_release_all(struct colo_compare *c)
{
    flush_everything(c, RELEASE_FORCED, false);
}

/* The oldest held packet heads its own queue (every queue is in arrival order): pop it from there. */
static bool release_oldest(struct colo_compare *c, enum release_reason why)
{
    struct colo_pkt *p = c->age_head;
    if (p == c->orphan_head) {
        c->orphan_head = p->next;
        if (!c->orphan_head)
            c->orphan_tail = NULL;
        p->next = NULL;
        release(c, p, why);
        return true;
    }
    struct conn *conn = conn_lookup(c->table, &p->view.key, conn_hash(c->table, &p->view.key));
    if (!conn || conn->stream.pvm_head != p)
        return false;
    release(c, pvm_pop_head(conn), why);
    return true;
}

uint64_t colo_compare_go_alone(struct colo_compare *c, uint64_t now)
{
    if (c->alone)
        return 0;
    uint64_t before = c->stats.released[RELEASE_FAILOVER];
    engine_now(c, now);
    while (c->age_head && release_oldest(c, RELEASE_FAILOVER))
        ;
    flush_everything(c, RELEASE_FAILOVER, false); /* the SVM queues, and anything the walk could not place */
    memset(c->orphan_keys, 0, sizeof(c->orphan_keys));
    c->alone = true;
    c->stats.failovers++;
    return c->stats.released[RELEASE_FAILOVER] - before;
}

bool colo_compare_alone(const struct colo_compare *c)
{
    return c->alone;
}

int colo_compare_rejoin(struct colo_compare *c)
{
    if (!c->alone)
        return 0;
    struct conn_table *fresh = conn_table_create(c->cfg.max_conns, &c->cfg.timeouts, conn_holds_pvm_packets,
                                                 on_conn_evicted, c);
    if (!fresh)
        return -1;
    conn_table_destroy(c->table);
    c->table = fresh;
    c->dirty_len = 0;
    c->next_scan_ns = 0;
    c->alone = false;
    return 0;
}

bool colo_compare_checkpoint_pending(const struct colo_compare *c)
{
    return c->checkpoint_pending;
}

const struct colo_compare_stats *colo_compare_stats(const struct colo_compare *c)
{
    return &c->stats;
}

const struct conn_table *colo_compare_table(const struct colo_compare *c)
{
    return c->table;
}

double colo_compare_bytes_per_conn(const struct colo_compare *c)
{
    return conn_table_bytes_per_conn(c->table) + (double)sizeof(*c->dirty) * c->dirty_cap / c->cfg.max_conns;
}

const char *checkpoint_reason_name(enum checkpoint_reason r)
{
    static const char *const names[CKPT_REASON_COUNT] = {
        "divergence", "timeout", "queue_full", "table_full", "pool_low", "shutdown",
    };
    return (unsigned)r < CKPT_REASON_COUNT ? names[r] : "unknown";
}

const char *release_reason_name(enum release_reason r)
{
    static const char *const names[RELEASE_REASON_COUNT] = {
        "matched", "uncompared", "checkpoint", "forced", "bypassed", "failover", "alone",
    };
    return (unsigned)r < RELEASE_REASON_COUNT ? names[r] : "unknown";
}

const char *divergence_kind_name(enum divergence_kind k)
{
    static const char *const names[DIV_KIND_COUNT] = {
        "payload", "fin_vs_data", "rst", "datagram_length",
    };
    return (unsigned)k < DIV_KIND_COUNT ? names[k] : "unknown";
}
