/*
 * divergence_explain.h — reading a divergence report back for a person.
 *
 * `colo-proxy explain FILE` takes any of a report's three files
 * (divergence_report.h) and prints the connection, the stream offset, a
 * side-by-side hex and ASCII view of both sides around the first differing byte
 * (marked), and, where the bytes look like a known cause, a hint. Every offset
 * it prints is decimal; only the bytes themselves are hex.
 */
#ifndef COLO_DIVERGENCE_EXPLAIN_H
#define COLO_DIVERGENCE_EXPLAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "colo/compare.h"

/*
 * The marks under a row of n bytes shown as hex and as text: "^^ " under each
 * byte that differs, '^' under its character (hex gets 3n+1 bytes, text n+1).
 * explain's view and replay's report mark differing bytes with it alike.
 */
void divergence_marks(const bool *differs, int n, char *hex, char *text);

/* Prints the report FILE belongs to; -1 with a one-line reason. */
int divergence_explain(const char *file, FILE *out, char *err, size_t errlen);

/*
 * A known cause, from the kind and the payloads (each from its start, with the
 * first differing byte at pvm_at / svm_at), or NULL when none fits.
 */
const char *divergence_hint(enum divergence_kind kind, const uint8_t *pvm, size_t pvm_len, size_t pvm_at,
                            const uint8_t *svm, size_t svm_len, size_t svm_at);

#endif
