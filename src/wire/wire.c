/*
 * wire.c - frame headers, lz4 payloads, HELLO/ERROR payloads, the token check, address
 * resolution and socket setup of the mars native protocol (see wire.h and
 * docs/mars-protocol.md). Batches are in wire_batch.c.
 *
 * Compression is the lz4 *block* format, not the lz4 frame format: the frame header already
 * carries both lengths, so the block decoder gets an exact output size (a peer cannot make
 * it allocate more than it announced, bounded by max_frame_bytes), and the lz4 frame's own
 * header, block headers and checksums would only repeat what TCP and TLS already give.
 *
 * Thread: any.
 */
#include "wire/wire.h"
#include "config/netconf.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <lz4.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "mars.pb-c.h"

/* ---- header ---- */

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

void mars_wire_put_hdr(uint8_t *out, const struct mars_wire_hdr *h)
{
    out[0] = 'M';
    out[1] = 'R';
    out[2] = MARS_WIRE_VERSION;
    out[3] = h->type;
    put_be(out + 4, h->flags, 2);
    put_be(out + 6, 0, 2);
    put_be(out + 8, h->seq, 8);
    put_be(out + 16, h->length, 4);
    put_be(out + 20, h->raw_length, 4);
}

int mars_wire_get_hdr(const uint8_t *p, uint32_t max_payload, struct mars_wire_hdr *h,
                      const char **why)
{
    if (p[0] != 'M' || p[1] != 'R') {
        *why = "bad magic (not a mars peer?)";
        return -EPROTO;
    }
    if (p[2] != MARS_WIRE_VERSION) {
        *why = "unsupported protocol version";
        return -EPROTO;
    }
    h->type = p[3];
    h->flags = (uint16_t)get_be(p + 4, 2);
    h->seq = get_be(p + 8, 8);
    h->length = (uint32_t)get_be(p + 16, 4);
    h->raw_length = (uint32_t)get_be(p + 20, 4);
    if (h->type < MARS_WIRE_HELLO || h->type > MARS_WIRE_PONG) {
        *why = "unknown frame type";
        return -EPROTO;
    }
    if ((h->flags & ~(unsigned)MARS_WIRE_F_LZ4) || get_be(p + 6, 2) != 0) {
        *why = "unknown flags";
        return -EPROTO;
    }
    if ((h->flags & MARS_WIRE_F_LZ4) && h->type != MARS_WIRE_BATCH) {
        *why = "compression on a control frame";
        return -EPROTO;
    }
    if (!(h->flags & MARS_WIRE_F_LZ4) && h->length != h->raw_length) {
        *why = "length and raw length differ on a plain frame";
        return -EPROTO;
    }
    if (h->raw_length > max_payload || h->length > max_payload ||
        (h->type != MARS_WIRE_BATCH && h->raw_length > MARS_WIRE_CONTROL_MAX)) {
        *why = "frame larger than max_frame_bytes";
        return -EMSGSIZE;
    }
    bool empty = h->type == MARS_WIRE_ACK || h->type == MARS_WIRE_PING || h->type == MARS_WIRE_PONG;
    if (empty && h->length != 0) {
        *why = "payload on a frame that has none";
        return -EPROTO;
    }
    return 0;
}

/* ---- lz4 ---- */

size_t mars_wire_lz4_bound(size_t n)
{
    return n > (size_t)LZ4_MAX_INPUT_SIZE ? 0 : (size_t)LZ4_compressBound((int)n);
}

size_t mars_wire_lz4(const void *src, size_t n, void *dst, size_t dst_cap)
{
    if (n == 0 || n > (size_t)LZ4_MAX_INPUT_SIZE || dst_cap > INT32_MAX)
        return 0;
    int c = LZ4_compress_default(src, dst, (int)n, (int)dst_cap);
    return c > 0 && (size_t)c < n ? (size_t)c : 0;
}

int mars_wire_unlz4(const void *src, uint32_t n, void *dst, uint32_t raw_len)
{
    if (n > INT32_MAX || raw_len > INT32_MAX)
        return -EPROTO;
    int d = LZ4_decompress_safe(src, dst, (int)n, (int)raw_len);
    return d == (int)raw_len ? 0 : -EPROTO;
}

/* ---- HELLO and ERROR ---- */

static int control_frame(uint8_t type, uint64_t seq, const ProtobufCMessage *m, uint8_t *out,
                         size_t cap)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n > MARS_WIRE_CONTROL_MAX || MARS_WIRE_HDR + n > cap)
        return -EMSGSIZE;
    protobuf_c_message_pack(m, out + MARS_WIRE_HDR);
    struct mars_wire_hdr h = {
        .type = type, .seq = seq, .length = (uint32_t)n, .raw_length = (uint32_t)n};
    mars_wire_put_hdr(out, &h);
    return (int)(MARS_WIRE_HDR + n);
}

int mars_wire_hello_frame(const struct mars_wire_hello *h, uint8_t *out, size_t cap)
{
    Mars__Hello m = MARS__HELLO__INIT;
    m.version = h->version;
    m.token.data = (uint8_t *)h->token;
    m.token.len = h->token ? h->token_len : 0;
    m.name = (char *)(h->name ? h->name : "");
    m.max_frame_bytes = h->max_frame_bytes;
    m.window = h->window;
    return control_frame(MARS_WIRE_HELLO, 0, &m.base, out, cap);
}

int mars_wire_hello_parse(const uint8_t *p, size_t n, struct mars_wire_hello *h, void **scratch)
{
    Mars__Hello *m = mars__hello__unpack(NULL, n, p);
    *scratch = m;
    if (!m)
        return -EPROTO;
    h->version = m->version;
    h->token = m->token.data;
    h->token_len = m->token.len;
    h->name = m->name ? m->name : "";
    h->max_frame_bytes = m->max_frame_bytes;
    h->window = m->window;
    return 0;
}

void mars_wire_hello_destroy(void *scratch)
{
    if (scratch)
        mars__hello__free_unpacked(scratch, NULL);
}

int mars_wire_error_frame(uint64_t seq, int code, const char *reason, uint8_t *out, size_t cap)
{
    Mars__Error m = MARS__ERROR__INIT;
    m.code = (Mars__Error__Code)code;
    m.reason = (char *)(reason ? reason : "");
    return control_frame(MARS_WIRE_ERROR, seq, &m.base, out, cap);
}

int mars_wire_error_parse(const uint8_t *p, size_t n, int *code, char *reason, size_t rcap)
{
    Mars__Error *m = mars__error__unpack(NULL, n, p);
    if (!m)
        return -EPROTO;
    *code = (int)m->code;
    snprintf(reason, rcap, "%s", m->reason ? m->reason : "");
    for (char *c = reason; *c; c++) /* a peer's text goes into our log: no control bytes */
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    mars__error__free_unpacked(m, NULL);
    return 0;
}

const char *mars_wire_error_name(int code)
{
    static const char *const names[] = {"unknown",   "bad token", "bad version",   "malformed",
                                        "too large", "busy",      "shutting down", "not delivered"};
    return code >= 0 && code < (int)(sizeof(names) / sizeof(names[0])) ? names[code] : "unknown";
}

bool mars_wire_token_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    unsigned char da[EVP_MAX_MD_SIZE], db[EVP_MAX_MD_SIZE];
    unsigned int la = 0, lb = 0;
    if (!EVP_Digest(a, alen, da, &la, EVP_sha256(), NULL) ||
        !EVP_Digest(b, blen, db, &lb, EVP_sha256(), NULL) || la != lb)
        return false;
    /* the digests are compared in constant time; equal digests of unequal lengths are not
     * a practical concern for SHA-256, but the length check costs nothing */
    return CRYPTO_memcmp(da, db, la) == 0 && alen == blen;
}

/* ---- addresses and sockets ---- */

int mars_wire_parse_address(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256], port[16];
    if (mars_netconf_split_address(text, host, sizeof(host), port, sizeof(port)))
        return -EINVAL;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(*host ? host : "127.0.0.1", port, &hints, &res);
    if (rc != 0 || !res)
        return rc == EAI_NONAME || rc == EAI_AGAIN || rc == EAI_FAIL ? -EHOSTUNREACH : -EINVAL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

void mars_wire_format_address(const struct sockaddr *sa, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(buf, cap, "%s:%u", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(buf, cap, "[%s]:%u", host, port);
    } else {
        snprintf(buf, cap, "?");
    }
}

void mars_wire_tune(int fd)
{
    int one = 1, idle = 30, intvl = 10, cnt = 3;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}
