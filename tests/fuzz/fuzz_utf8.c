/*
 * fuzz_utf8.c - libFuzzer target for core/utf8.c: the count of invalid sequences
 * (mars_utf8_invalid, which checks valid regions with vector code where the CPU has it)
 * must equal what a plain walk with mars_utf8_seq counts, for the input and for its
 * suffixes at a few offsets (to move sequences across the 32-byte blocks).
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t walk(const unsigned char *s, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n;) {
        size_t len = s[i] < 0x80 ? 1 : mars_utf8_seq(s + i, n - i);
        if (len == 0) {
            bad++;
            len = 1;
        }
        i += len;
    }
    return bad;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t off = 0; off < 4 && off <= size; off++)
        if (mars_utf8_invalid(data + off, size - off) != walk(data + off, size - off))
            abort();
    return 0;
}
