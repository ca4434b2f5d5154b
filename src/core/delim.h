/*
 * delim.h - positions of one byte value (a line delimiter) in a buffer, many at a time.
 *
 * A line reader that calls memchr once per line pays the call's set-up for every line,
 * which for 100-byte lines costs more than the search. mars_delim_index() instead compares
 * 64 bytes per step (AVX2 where the CPU has it) and writes the offsets of every match into
 * an array, which the caller then walks.
 *
 * Thread: any; no state.
 */
#ifndef MARS_DELIM_H
#define MARS_DELIM_H

#include <stddef.h>
#include <stdint.h>

/* Smallest `cap` mars_delim_index accepts: one 64-byte step can match 64 times. */
#define MARS_DELIM_MIN_CAP 64

/* Stores in out[] the offsets (from p, ascending) of the bytes of p[0, n) equal to d, at most
 * cap (>= MARS_DELIM_MIN_CAP) of them, and returns how many it stored. *done is set to the
 * number of bytes examined: every match in p[0, *done) is listed, and *done == n unless out[]
 * filled up first. Offsets fit in uint32_t: n must be below 4 GiB. Never reads past p + n. */
size_t mars_delim_index(const void *p, size_t n, unsigned char d, uint32_t *out, size_t cap,
                        size_t *done);

#endif
