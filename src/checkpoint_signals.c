/*
 * checkpoint_signals.c — port up/down history, in-band checkpoints paired with QMP's,
 * and the primary's count of SVM epochs.
 *
 * Owns: nothing beyond the structs it is handed. Must never: take a port that was
 * never up for a checkpoint (a VM not started yet is not a VM stopped by COLO).
 */
#include "colo/checkpoint_signals.h"

#include <string.h>

#define PAIR_WINDOW_NS 1000000000ll /* QMP's RESUME and the port's up within a second: one checkpoint */

void link_watch_init(struct link_watch *w, bool up, uint64_t now)
{
    memset(w, 0, sizeof(*w));
    w->up = w->ever_up = up;
    w->since_ns = now;
}

bool link_watch_update(struct link_watch *w, bool up, uint64_t now)
{
    if (up == w->up)
        return false;
    if (up && w->ever_up) {
        w->last_down_ns = now - w->since_ns;
        w->down_ns_total += w->last_down_ns;
        if (w->last_down_ns > w->down_ns_longest)
            w->down_ns_longest = w->last_down_ns;
    }
    w->downs += !up && w->ever_up;
    w->ever_up |= up;
    w->up = up;
    w->since_ns = now;
    return true;
}

uint64_t link_watch_down_ns(const struct link_watch *w, uint64_t now)
{
    return !w->up && w->ever_up && now > w->since_ns ? now - w->since_ns : 0;
}

static void begin(struct checkpoint_signals *s, uint64_t now)
{
    s->open = true;
    s->open_at_ns = now;
    s->stale_at_begin = s->epoch;
}

static void try_pair(struct checkpoint_signals *s)
{
    if (!s->last_up_at_ns || !s->last_qmp_at_ns)
        return;
    int64_t apart = (int64_t)(s->last_up_at_ns - s->last_qmp_at_ns);
    if (apart > PAIR_WINDOW_NS || apart < -PAIR_WINDOW_NS)
        return;
    s->paired = true;
    s->up_minus_resume_ns = apart;
    s->down_minus_qmp_ns = (int64_t)(s->last_port_down_ns - s->last_qmp_ns);
}

void checkpoint_signals_port(struct checkpoint_signals *s, const struct link_watch *w, uint64_t now)
{
    if (!w->up) {
        if (!w->ever_up)
            return;
        s->port_began++;
        begin(s, now);
        return;
    }
    if (w->downs == 0)
        return; /* the first up: the VM started */
    s->port_ended++;
    s->last_port_down_ns = w->last_down_ns;
    s->last_up_at_ns = now;
    try_pair(s);
}

void checkpoint_signals_qmp_stop(struct checkpoint_signals *s, uint64_t now)
{
    s->qmp_began++;
    begin(s, now);
}

bool checkpoint_signals_done(struct checkpoint_signals *s, uint64_t qmp_ns, uint64_t now, uint32_t *stale_through)
{
    if (qmp_ns) {
        s->qmp_done++;
        s->last_qmp_ns = qmp_ns;
        s->last_qmp_at_ns = now;
        try_pair(s);
    }
    bool was_open = s->open;
    s->open = false;
    if (!s->markers)
        return false;
    *stale_through = was_open ? s->stale_at_begin : s->epoch;
    if (was_open && s->last_marker_at_ns >= s->open_at_ns)
        s->svm_ahead_ns = (int64_t)(now - s->last_marker_at_ns);
    s->last_stale_through = *stale_through;
    return true;
}

uint32_t checkpoint_signals_marker(struct checkpoint_signals *s, const struct epoch_marker *m, uint64_t now)
{
    s->marker_gaps += s->markers && m->epoch != s->remote_epoch + 1;
    s->remote_epoch = m->epoch;
    s->last_svm_down_us = m->down_us;
    s->last_marker_at_ns = now;
    s->markers++;
    return ++s->epoch;
}

void checkpoint_signals_next_epoch(struct checkpoint_signals *s, uint64_t down_ns, struct epoch_marker *out)
{
    uint64_t us = down_ns / 1000;
    out->epoch = ++s->epoch;
    out->down_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    s->markers++;
}
