/*
 * utf8.h - UTF-8 validation shared by sources (counting invalid input) and encoders
 * (replacing it): overlong forms, surrogates and values above U+10FFFF are invalid.
 */
#ifndef MARS_UTF8_H
#define MARS_UTF8_H

#include <stddef.h>

/* Length (1-4) of the valid sequence at s, or 0 when the bytes there are not valid. */
size_t mars_utf8_seq(const unsigned char *s, size_t n);
/* Number of invalid sequences (each counted once) in s[0..n). ASCII runs are skipped
 * eight bytes at a time. */
size_t mars_utf8_invalid(const unsigned char *s, size_t n);
/* Number of bytes (0-3) at the end of s[0..n) that begin a multibyte sequence the buffer
 * ends before finishing: a reader of a stream validates those with the bytes that follow
 * them instead of counting a sequence that a read happened to cut. */
size_t mars_utf8_unfinished(const unsigned char *s, size_t n);

#endif
