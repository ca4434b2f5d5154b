/*
 * wire.h - the mars native protocol (mars sink -> mars source), shared by both ends:
 * frame headers, the lz4 payload codec, HELLO and ERROR payloads, the constant-time token
 * check, events <-> protobuf batches, and the address and socket helpers both ends use.
 * docs/mars-protocol.md is the specification; proto/mars.proto holds the payloads.
 *
 * A frame is a 24-byte header and a payload:
 *
 *   0  'M' 'R'      magic            8  u64 seq         (big-endian)
 *   2  u8 version   (1)             16  u32 length      payload bytes on the wire
 *   3  u8 type      (enum below)    20  u32 raw_length  payload bytes after decompression
 *   4  u16 flags    (bit 0: lz4)
 *   6  u16 reserved (0)
 *
 * Nothing here owns a socket: the source and the sink drive their own ev ops and hand
 * received bytes to these functions. Everything that reads peer bytes treats them as
 * hostile: it validates, never asserts, and reports a reason.
 *
 * Thread: any; no state outside the arguments.
 */
#ifndef MARS_WIRE_H
#define MARS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "model/batch.h"

#define MARS_WIRE_VERSION 1
#define MARS_WIRE_HDR     24
/* Control frames (HELLO, ERROR) are small; a bigger one is malformed. */
#define MARS_WIRE_CONTROL_MAX 4096

enum mars_wire_type {
    MARS_WIRE_HELLO = 1, /* payload: mars.Hello */
    MARS_WIRE_BATCH = 2, /* seq; payload: mars.Batch, lz4 when flagged */
    MARS_WIRE_ACK = 3,   /* seq: every BATCH up to and including it is accepted */
    MARS_WIRE_ERROR = 4, /* seq (0 or the batch concerned); payload: mars.Error; then close */
    MARS_WIRE_PING = 5,  /* seq echoed in the PONG */
    MARS_WIRE_PONG = 6,
};

enum { MARS_WIRE_F_LZ4 = 1u << 0 };

struct mars_wire_hdr {
    uint8_t type;
    uint16_t flags;
    uint64_t seq;
    uint32_t length, raw_length;
};

/* Writes h as MARS_WIRE_HDR bytes at out. */
void mars_wire_put_hdr(uint8_t *out, const struct mars_wire_hdr *h);
/* Reads a header from the MARS_WIRE_HDR bytes at p and checks it: magic, version, type,
 * flags, and raw_length (and length) within max_payload; without the lz4 flag length must
 * equal raw_length. Returns 0, or -EPROTO / -EMSGSIZE with a static reason in *why. */
int mars_wire_get_hdr(const uint8_t *p, uint32_t max_payload, struct mars_wire_hdr *h,
                      const char **why);

/* ---- payload compression (lz4 block; the header carries the raw length) ---- */

/* Compresses n bytes of src into dst (room: mars_wire_lz4_bound(n)). Returns the
 * compressed length, or 0 when compression does not shrink the payload (send it plain). */
size_t mars_wire_lz4_bound(size_t n);
size_t mars_wire_lz4(const void *src, size_t n, void *dst, size_t dst_cap);
/* Decompresses exactly h->raw_length bytes into dst. Returns 0 or -EPROTO. */
int mars_wire_unlz4(const void *src, uint32_t n, void *dst, uint32_t raw_len);

/* ---- HELLO and ERROR ---- */

struct mars_wire_hello {
    uint32_t version;
    const uint8_t *token; /* borrowed */
    size_t token_len;
    const char *name;
    uint32_t max_frame_bytes, window;
};
/* Encodes a whole HELLO frame (header included) into out (cap bytes). Returns its length,
 * or -EMSGSIZE. */
int mars_wire_hello_frame(const struct mars_wire_hello *h, uint8_t *out, size_t cap);
/* Decodes a HELLO payload. Strings in *h point into *scratch (owned by the caller: free with
 * mars_wire_hello_destroy). Returns 0 or -EPROTO. */
int mars_wire_hello_parse(const uint8_t *p, size_t n, struct mars_wire_hello *h, void **scratch);
void mars_wire_hello_destroy(void *scratch);
/* Encodes an ERROR frame with `code` (mars.Error.Code) and reason. Returns its length or
 * -EMSGSIZE. */
int mars_wire_error_frame(uint64_t seq, int code, const char *reason, uint8_t *out, size_t cap);
/* Decodes an ERROR payload into code and reason (NUL-terminated, truncated to rcap).
 * Returns 0 or -EPROTO. */
int mars_wire_error_parse(const uint8_t *p, size_t n, int *code, char *reason, size_t rcap);
/* Name of an error code for logs ("bad token"). */
const char *mars_wire_error_name(int code);

/* True when a equals b, in time that does not depend on where they differ (both are
 * hashed first, so the length of the secret does not leak either). */
bool mars_wire_token_equal(const void *a, size_t alen, const void *b, size_t blen);

/* ---- batches ---- */

/*
 * Encoder of BATCH payloads: events are added one by one (mars_wire_enc_add) while the
 * packed size stays under a limit, then mars_wire_enc_finish packs them, compresses them
 * when asked, and leaves one whole frame (header + payload) in `frame`. Buffers are reused
 * across frames; the caller owns the struct (init/fini).
 */
struct mars_wire_enc {
    void *ev; /* wire_batch.c's struct enc_event[], one per added event */
    void *fl; /* its struct enc_field[] of all added events */
    uint32_t nev, nfl;
    size_t evcap, flcap;
    size_t size;  /* packed Batch size so far */
    uint8_t *raw; /* packed Batch */
    size_t rawcap;
    uint8_t *frame; /* header + payload after finish */
    size_t framecap, framelen;
};
void mars_wire_enc_init(struct mars_wire_enc *e);
void mars_wire_enc_fini(struct mars_wire_enc *e);
void mars_wire_enc_reset(struct mars_wire_enc *e);
/* Adds ev (borrowed until finish) unless the packed batch would grow past limit and it is
 * not the first event. Returns 0, -ENOSPC (frame full; ev not added), -EMSGSIZE (ev alone is
 * bigger than limit; not added), or -ENOMEM. */
int mars_wire_enc_add(struct mars_wire_enc *e, const struct mars_event *ev, size_t limit);
/* Packs the added events into e->frame as a BATCH frame with seq. Returns 0 or -ENOMEM. */
int mars_wire_enc_finish(struct mars_wire_enc *e, uint64_t seq, bool lz4);

/* Decodes a BATCH payload (already decompressed) into events appended to b: the payload is
 * copied into b's arena, and messages and fields point into it; every field value is
 * checked (numbers, escaped strings, raw arrays and objects are valid JSON; parents come
 * before members). Returns 0, -EPROTO with a static reason in *why (b may then hold some
 * events: release it), or -ENOMEM. */
int mars_wire_decode_batch(const uint8_t *p, size_t n, struct mars_batch *b, const char **why);
/* The same without the copy: p must live as long as b (it is in b's arena). */
int mars_wire_decode_batch_owned(const uint8_t *p, size_t n, struct mars_batch *b,
                                 const char **why);

/* ---- addresses and sockets ---- */

/* Resolves "host:port" or "[v6]:port" into an address: an IP literal at once, a name with
 * getaddrinfo (which blocks: callers resolve at startup or when they (re)connect, never per
 * request). Returns 0, -EINVAL (no port, bad syntax) or -EHOSTUNREACH (name unknown). */
int mars_wire_parse_address(const char *text, struct sockaddr_storage *ss, socklen_t *len);
/* Formats ss as "host:port" for logs. */
void mars_wire_format_address(const struct sockaddr *sa, char *buf, size_t cap);
/* TCP_NODELAY and keepalive (idle 30 s, 3 probes 10 s apart) on a connected socket; best
 * effort (a socket without them still works, it only notices a dead peer later). */
void mars_wire_tune(int fd);

#endif
