/*
 * fuzz_notify.c — libFuzzer target: the Xen COLO frame's notify_dev protocol as
 * the proxy receives it: chardev records (no vnet field) carrying words.
 *
 * Invariants: a word is acted on only when it is exactly one of the frame's words;
 * every record is counted once (inits + checkpoints done + unknown = records);
 * the log is asked for at most once per 1024 unknown words after the first.
 */
#include <string.h>

#include "colo/chardev_codec.h"
#include "colo/notify_words.h"
#include "fuzz_input.h"

struct state {
    struct notify_peer peer;
    uint64_t records, logged;
};

static void on_word(void *ctx, const uint8_t *bytes, uint32_t len, uint32_t vnet_len)
{
    struct state *s = ctx;
    FUZZ_CHECK(vnet_len == 0);
    bool log_it;
    enum notify_action a = notify_peer_word(&s->peer, bytes, len, &log_it);
    bool init = len == strlen(NOTIFY_WORD_INIT) && memcmp(bytes, NOTIFY_WORD_INIT, len) == 0;
    bool done = len == strlen(NOTIFY_WORD_CHECKPOINT_DONE) && memcmp(bytes, NOTIFY_WORD_CHECKPOINT_DONE, len) == 0;
    FUZZ_CHECK(a == (init ? NOTIFY_REPLY_INIT : done ? NOTIFY_FLUSH : NOTIFY_IGNORE));
    FUZZ_CHECK(!log_it || a == NOTIFY_IGNORE);
    s->logged += log_it;
    s->records++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct state s;
    memset(&s, 0, sizeof(s));
    struct chardev_decoder d;
    FUZZ_CHECK(chardev_decoder_init(&d, false) == 0);
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    chardev_decoder_feed(&d, copy, size, on_word, &s);
    free(copy);
    chardev_decoder_free(&d);
    FUZZ_CHECK(s.peer.inits + s.peer.checkpoints_done + s.peer.unknown_words == s.records);
    FUZZ_CHECK(s.logged == (s.peer.unknown_words + 1023) / 1024);
    return 0;
}
