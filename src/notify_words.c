/*
 * notify_words.c — the Xen COLO frame's notify_dev words, proxy side (see notify_words.h).
 *
 * Reads no byte past `len`; a word matches only at its exact length.
 */
#include "colo/notify_words.h"

#include <string.h>

#define UNKNOWN_LOG_EVERY 1024

static bool is_word(const uint8_t *bytes, uint32_t len, const char *word)
{
    return len == strlen(word) && memcmp(bytes, word, len) == 0;
}

enum notify_action notify_peer_word(struct notify_peer *peer, const uint8_t *bytes, uint32_t len, bool *log_it)
{
    *log_it = false;
    if (is_word(bytes, len, NOTIFY_WORD_INIT)) {
        peer->inits++;
        return NOTIFY_REPLY_INIT;
    }
    if (is_word(bytes, len, NOTIFY_WORD_CHECKPOINT_DONE)) {
        peer->checkpoints_done++;
        return NOTIFY_FLUSH;
    }
    *log_it = peer->unknown_words % UNKNOWN_LOG_EVERY == 0;
    peer->unknown_words++;
    return NOTIFY_IGNORE;
}
