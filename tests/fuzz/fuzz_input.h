/*
 * fuzz_input.h — reading a fuzzer's bytes as a little program: numbers and
 * byte strings taken from the front, zeros once the input runs out.
 */
#ifndef COLO_FUZZ_INPUT_H
#define COLO_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct fuzz_input {
    const uint8_t *p;
    size_t left;
};

static inline uint8_t take_u8(struct fuzz_input *in)
{
    if (!in->left)
        return 0;
    in->left--;
    return *in->p++;
}

static inline uint16_t take_u16(struct fuzz_input *in)
{
    return (uint16_t)(take_u8(in) | take_u8(in) << 8);
}

static inline uint32_t take_u32(struct fuzz_input *in)
{
    return (uint32_t)take_u16(in) | (uint32_t)take_u16(in) << 16;
}

/* Up to `n` bytes from the front; *got says how many there were. */
static inline const uint8_t *take_bytes(struct fuzz_input *in, size_t n, size_t *got)
{
    const uint8_t *at = in->p;
    *got = n < in->left ? n : in->left;
    in->p += *got;
    in->left -= *got;
    return at;
}

/* Stops the run on a broken invariant: libFuzzer reports it as a crash and keeps the input. */
#define FUZZ_CHECK(cond) do { if (!(cond)) { __builtin_trap(); } } while (0)

#endif
