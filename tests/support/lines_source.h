/*
 * lines_source.h - the test-only `lines` source: emits exactly the lines given in its
 * `lines:` option, so runtime tests of transforms control their input byte for byte.
 *
 * Options: lines (list), batch_size (lines per batch, 0 = all in one), interval (pause
 * between batches, to let time-based transforms fire), ts_ns (the time of every event, so
 * JSON output is reproducible; default 2024-01-01T00:00:00Z). Lines are copied into a chunk
 * with a newline after each, as a file read would leave them.
 */
#ifndef MARS_TEST_LINES_SOURCE_H
#define MARS_TEST_LINES_SOURCE_H

/* Registers `lines` (idempotent). */
void mars_lines_source_setup(void);

#endif
