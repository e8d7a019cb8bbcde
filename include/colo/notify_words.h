/*
 * notify_words.h — the Xen COLO frame's notify_dev protocol, proxy side.
 *
 * Words travel as chardev records (chardev_codec.h), without a vnet field. The
 * frame says COLO_USERSPACE_PROXY_INIT once it is up (the proxy answers
 * COLO_COMPARE_GET_XEN_INIT) and COLO_CHECKPOINT when a checkpoint is done (the
 * proxy flushes); the proxy says DO_CHECKPOINT to ask for one. Anything else is
 * counted and ignored; the first unknown word and then every 1024th is worth a
 * log line, so a babbling peer cannot flood the log.
 */
#ifndef COLO_NOTIFY_WORDS_H
#define COLO_NOTIFY_WORDS_H

#include <stdbool.h>
#include <stdint.h>

#define NOTIFY_WORD_INIT "COLO_USERSPACE_PROXY_INIT"
#define NOTIFY_WORD_INIT_REPLY "COLO_COMPARE_GET_XEN_INIT"
#define NOTIFY_WORD_DO_CHECKPOINT "DO_CHECKPOINT"
#define NOTIFY_WORD_CHECKPOINT_DONE "COLO_CHECKPOINT"

enum notify_action {
    NOTIFY_REPLY_INIT, /* answer NOTIFY_WORD_INIT_REPLY */
    NOTIFY_FLUSH,      /* a checkpoint is done */
    NOTIFY_IGNORE,     /* an unknown word */
};

struct notify_peer {
    uint64_t inits, checkpoints_done, unknown_words;
};

/* What a word from the frame asks for; *log_it says whether an unknown word deserves a log line. */
enum notify_action notify_peer_word(struct notify_peer *peer, const uint8_t *bytes, uint32_t len, bool *log_it);

#endif
