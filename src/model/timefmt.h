/*
 * timefmt.h - reading timestamps out of log lines, and time zones.
 *
 * A format is compiled once (at transform init) and applied per event without allocation:
 *   rfc3339              2024-05-01T12:00:00.123Z, space instead of T, any fraction, Z or
 *                        +hh:mm / +hhmm; without an offset the time zone applies
 *   unix unix_ms unix_us unix_ns   a number since the epoch (seconds may have a fraction)
 *   a pattern            strptime-like: %Y %y %m %d %e %H %I %p %M %S %f (fraction) %z
 *                        (Z, +hh:mm, +hhmm) %Z (UTC/GMT/Z) %b %h %B (month names) %a %A (day
 *                        names, skipped) %j (ignored) %s (epoch seconds) %T %F %%; a space
 *                        matches any run of blanks. A pattern without a year takes the year
 *                        that puts the time nearest before now (syslog's "Oct 11 22:14:15").
 * Time zones: UTC, local (/etc/localtime), a fixed offset (+08:00), or an IANA name read
 * from the system's TZif files ($TZDIR or /usr/share/zoneinfo). Offsets come from the
 * file's transition table; times past its last transition keep the last offset.
 *
 * Thread: compiled objects are read-only after compile; use from any thread.
 */
#ifndef MARS_TIMEFMT_H
#define MARS_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Writes ns as "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (NUL-terminated, buf >= 40 bytes) and
 * returns its length. */
size_t mars_time_rfc3339(int64_t ns, char *buf);
/* Seconds since the epoch of a UTC civil time (proleptic Gregorian, any year). */
int64_t mars_time_from_civil(int64_t y, unsigned mon, unsigned d, unsigned h, unsigned mi,
                             unsigned s);

struct mars_tz;
/* Returns an owned zone (free with mars_tz_destroy) or NULL with a reason in err. */
struct mars_tz *mars_tz_load(const char *name, char *err, size_t errlen);
void mars_tz_destroy(struct mars_tz *tz);
/* UTC offset in seconds at a UTC instant; and the UTC instant of a local wall time. */
int32_t mars_tz_offset(const struct mars_tz *tz, int64_t utc_sec);
int64_t mars_tz_local_to_utc(const struct mars_tz *tz, int64_t local_sec);

struct mars_timefmt;
/* Compiles a format name or pattern with a zone for times that carry no offset. Returns an
 * owned format (free with mars_timefmt_destroy) or NULL with a reason in err. */
struct mars_timefmt *mars_timefmt_compile(const char *format, const char *tz, char *err,
                                          size_t errlen);
void mars_timefmt_destroy(struct mars_timefmt *f);
/* Parses s[0..n) entirely. now_ns (wall clock) settles a missing year. Returns 0 with
 * *out_ns set, or -EINVAL. */
int mars_timefmt_parse(const struct mars_timefmt *f, const char *s, size_t n, int64_t now_ns,
                       int64_t *out_ns);

#endif
