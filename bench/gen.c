/*
 * gen.c - the benchmark data generator: seeded, streaming, deterministic log lines on stdout.
 *
 * Usage: gen [--format F] [--bytes SIZE | --lines N] [--seed S] [--invalid-permille P]
 *   --format   nginx | json | cri | docker | java | mixed (default mixed)
 *   --bytes    stop after the record that reaches SIZE bytes (suffixes K M G, KiB MiB GiB)
 *   --lines    stop after exactly N lines (a stack trace may be cut at the end)
 *   --seed     seed of the generator (default 1); equal seeds give byte-identical output
 *   --invalid-permille  lines per thousand that carry an invalid UTF-8 sequence (default 2)
 * On success prints one summary line on stderr: "gen: lines=N bytes=B invalid_utf8=K".
 * Build: cc -O2 -std=c11 -o gen bench/gen.c   (bench/run does it for you)
 *
 * How it works: a splitmix64/xoshiro256** generator drives every choice, so output depends
 * only on the seed and the options (no libc rand, locale or clock). Free text comes from a
 * word pool built once from the seed; a message of length L is a slice of the pool cut at
 * spaces, so drawing a long line costs a memcpy, not L random draws. Records are assembled
 * straight into a 4 MiB output buffer that is written out with write() when it passes
 * 3 MiB, so memory stays constant at any output size.
 *
 * Shapes: nginx access lines in the default "combined" log format; JSON application logs
 * with nested objects (http, user, trace, kubernetes); CRI lines (`TS stdout F {json}`,
 * long payloads split into `P` partial lines); Docker json-file lines; Java logs with stack
 * traces (`\tat ...` frames, `Caused by:`), i.e. multiline records. Mixed is 30% nginx,
 * 30% JSON, 20% CRI, 10% Docker, 10% Java records. Lines run from 50 B to ~15 KiB (most
 * 100-600 B; stack-trace continuation lines are shorter, as they are in life). A small share
 * of lines carry an injected invalid UTF-8 sequence (counted as invalid_utf8); CRI partial
 * lines are cut at byte offsets like kubelet's, so a `P` line may end inside a multi-byte
 * character. Many lines carry valid multi-byte UTF-8.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OUT_CAP   (4u << 20)
#define OUT_FLUSH (3u << 20) /* a record never exceeds OUT_CAP - OUT_FLUSH */
#define POOL_SIZE (1u << 20)
#define MAX_LINE  16384
#define MIN_LINE  50

enum fmt { F_NGINX, F_JSON, F_CRI, F_DOCKER, F_JAVA, F_MIXED };
static const char *const fmt_names[] = {"nginx", "json", "cri", "docker", "java", "mixed", NULL};

/* ---- random numbers ---------------------------------------------------------------- */

static uint64_t rs[4];

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rnd(void)
{
    uint64_t r = rotl(rs[1] * 5, 7) * 9, t = rs[1] << 17;
    rs[2] ^= rs[0];
    rs[3] ^= rs[1];
    rs[1] ^= rs[2];
    rs[0] ^= rs[3];
    rs[2] ^= t;
    rs[3] = rotl(rs[3], 45);
    return r;
}

/* uniform in [0, n) (n > 0); the modulo bias is irrelevant here */
static uint32_t rn(uint32_t n)
{
    return (uint32_t)((rnd() >> 32) % n);
}

static uint32_t range(uint32_t lo, uint32_t hi)
{
    return lo + rn(hi - lo + 1);
}

#define PICK(arr) (arr[rn(sizeof(arr) / sizeof(arr[0]))])

/* ---- output buffer ----------------------------------------------------------------- */

static char *out;
static size_t olen;
static uint64_t total_bytes, total_lines, total_invalid;

static void put(const char *s, size_t n)
{
    memcpy(out + olen, s, n);
    olen += n;
}

static void puts_(const char *s)
{
    put(s, strlen(s));
}

static void putc_(char c)
{
    out[olen++] = c;
}

static void put_u(uint64_t v)
{
    char tmp[24];
    int i = 24;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(tmp + i, (size_t)(24 - i));
}

/* zero-padded to width digits */
static void put_uw(uint64_t v, int width)
{
    char tmp[24];
    for (int i = width - 1; i >= 0; i--) {
        tmp[i] = (char)('0' + v % 10);
        v /= 10;
    }
    put(tmp, (size_t)width);
}

static void put_hex(int n)
{
    static const char hx[] = "0123456789abcdef";
    uint64_t r = 0;
    for (int i = 0; i < n; i++) {
        if (i % 16 == 0)
            r = rnd();
        putc_(hx[r & 15]);
        r >>= 4;
    }
}

static int flush_out(void)
{
    size_t off = 0;
    while (off < olen) {
        ssize_t n = write(STDOUT_FILENO, out + off, olen - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        off += (size_t)n;
    }
    olen = 0;
    return 0;
}

/* ---- clock: deterministic event time, formatted without strftime per line ----------- */

static int64_t clk_ns = 1795478400LL * 1000000000LL; /* 2026-11-24T00:00:00Z */
static int64_t clk_sec = -1;
static char clk_iso[24];   /* 2026-11-24T05:31:37 */
static char clk_nginx[32]; /* 24/Nov/2026:05:31:37 +0000 */
static char clk_java[24];  /* 2026-11-24 05:31:37 */

static void tick(void)
{
    clk_ns += range(1, 2000) * 1000LL; /* 1 us .. 2 ms between records */
    int64_t s = clk_ns / 1000000000LL;
    if (s == clk_sec)
        return;
    clk_sec = s;
    time_t t = (time_t)s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(clk_iso, sizeof(clk_iso), "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(clk_java, sizeof(clk_java), "%Y-%m-%d %H:%M:%S", &tm);
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(clk_nginx, sizeof(clk_nginx), "%02d/%s/%04d:%02d:%02d:%02d +0000", tm.tm_mday,
             mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void put_ts_nanos(void) /* 2026-11-24T05:31:37.123456789Z */
{
    puts_(clk_iso);
    putc_('.');
    put_uw((uint64_t)(clk_ns % 1000000000LL), 9);
    putc_('Z');
}

static void put_ts_millis(void) /* 2026-11-24T05:31:37.123Z */
{
    puts_(clk_iso);
    putc_('.');
    put_uw((uint64_t)(clk_ns % 1000000000LL) / 1000000, 3);
    putc_('Z');
}

/* ---- text pool --------------------------------------------------------------------- */

static char *pool;

static const char *const words[] = {
    "order",   "payment",   "user",       "request",   "session", "cache",     "timeout",
    "retry",   "upstream",  "connection", "accepted",  "refused", "database",  "query",
    "commit",  "rollback",  "worker",     "queue",     "message", "batch",     "flush",
    "token",   "expired",   "invalid",    "checkout",  "cart",    "inventory", "shipment",
    "account", "profile",   "login",      "logout",    "the",     "a",         "to",
    "of",      "in",        "for",        "with",      "from",    "processed", "failed",
    "started", "completed", "received",   "sent",      "ok",      "slow",      "id",
    "node",    "pod",       "namespace",  "container", "image",   "pulled",    "ready",
    "café",    "naïve",     "größe",      "日本語",    "журнал",  "données",   "ünïcödé",
    "✓",
};

static void build_pool(void)
{
    size_t n = 0;
    while (n < POOL_SIZE - 32) {
        const char *w = PICK(words);
        size_t l = strlen(w);
        memcpy(pool + n, w, l);
        n += l;
        if (rn(16) == 0 && n < POOL_SIZE - 32) {
            pool[n++] = rn(2) ? ',' : '.';
        }
        pool[n++] = ' ';
    }
    pool[n - 1] = ' ';
    memset(pool + n, ' ', POOL_SIZE - n);
}

/* Appends about len bytes of pool text (JSON-safe: letters, spaces, punctuation, UTF-8),
 * starting and ending on word boundaries. */
static void put_text(size_t len)
{
    if (len == 0)
        return;
    if (len > POOL_SIZE / 2)
        len = POOL_SIZE / 2;
    size_t off = rn(POOL_SIZE - (uint32_t)len - 64);
    const char *p = memchr(pool + off, ' ', 64);
    off = p ? (size_t)(p - pool) + 1 : off;
    size_t end = off + len;
    while (end > off && pool[end - 1] != ' ')
        end--; /* never cut a multi-byte character: cut before the word */
    if (end > off)
        end--; /* drop the trailing space */
    put(pool + off, end - off);
}

static const char *const bad_utf8[] = {
    "\xc3\x28", "\xff", "\xe2\x82", "\xed\xa0\x80", "\xc0\xaf", "\xf8\x88\x80\x80\x80", "\x80"};

static uint32_t invalid_permille = 2;

/* Sometimes appends an invalid UTF-8 sequence (counted). */
static void maybe_bad(void)
{
    if (rn(1000) < invalid_permille) {
        puts_(PICK(bad_utf8));
        total_invalid++;
    }
}

/* A message length for one line: most 20-240 B, a tail up to ~15 KiB (whole lines stay
 * under 16 KiB). */
static size_t msg_len(void)
{
    uint32_t r = rn(1000);
    if (r < 850)
        return range(20, 240);
    if (r < 970)
        return range(240, 1000);
    if (r < 997)
        return range(1000, 6000);
    return range(6000, MAX_LINE - 1000);
}

/* ---- record shapes ----------------------------------------------------------------- */

static const char *const methods[] = {"GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH"};
static const char *const paths[] = {"/api/v1/orders", "/api/v1/users",  "/healthz",
                                    "/static/app.js", "/api/v2/search", "/login",
                                    "/cart/items",    "/metrics"};
static const char *const agents[] = {
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
    "Safari/537.36",
    "curl/8.4.0",
    "kube-probe/1.29",
    "Go-http-client/1.1",
    "python-requests/2.31.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15"};
static const uint32_t statuses[] = {200, 200, 200, 200, 201, 204, 301,
                                    304, 400, 404, 429, 500, 503};
static const char *const levels[] = {"info", "info", "info", "info", "debug", "warn", "error"};
static const char *const loggers[] = {"http.server", "db.pool",        "orders.service",
                                      "auth",        "kafka.consumer", "scheduler"};
static const char *const namespaces[] = {"default", "payments", "shop", "kube-system",
                                         "monitoring"};
static const char *const apps[] = {"checkout",  "cart", "api-gateway",
                                   "inventory", "auth", "search"};

static void nginx_line(void)
{
    size_t start = olen;
    put_u(range(1, 223));
    putc_('.');
    put_u(rn(256));
    putc_('.');
    put_u(rn(256));
    putc_('.');
    put_u(range(1, 254));
    puts_(" - - [");
    puts_(clk_nginx);
    puts_("] \"");
    puts_(PICK(methods));
    putc_(' ');
    puts_(PICK(paths));
    putc_('/');
    put_u(rn(100000));
    size_t want = msg_len();
    if (want > 240) { /* long lines: a long query string */
        puts_("?q=");
        size_t s = olen;
        put_text(want - 200);
        for (size_t i = s; i < olen; i++)
            if (out[i] == ' ')
                out[i] = '+';
    }
    puts_(" HTTP/1.1\" ");
    put_u(PICK(statuses));
    putc_(' ');
    put_u(rn(50000));
    puts_(" \"-\" \"");
    puts_(PICK(agents));
    maybe_bad();
    putc_('"'); /* nginx's default "combined" format ends here */
    while (olen - start < MIN_LINE)
        putc_(' ');
    putc_('\n');
    total_lines++;
}

/* The JSON application record without the final newline. */
static void json_record(bool allow_bad)
{
    puts_("{\"ts\":\"");
    put_ts_millis();
    puts_("\",\"level\":\"");
    puts_(PICK(levels));
    puts_("\",\"logger\":\"");
    puts_(PICK(loggers));
    puts_("\",\"msg\":\"");
    put_text(msg_len());
    if (allow_bad)
        maybe_bad();
    puts_("\",\"http\":{\"method\":\"");
    puts_(PICK(methods));
    puts_("\",\"path\":\"");
    puts_(PICK(paths));
    puts_("\",\"status\":");
    put_u(PICK(statuses));
    puts_(",\"latency_ms\":");
    put_u(rn(3000));
    putc_('.');
    put_u(rn(10));
    puts_("},\"user\":{\"id\":\"u-");
    put_u(rn(1000000));
    puts_("\",\"roles\":[\"reader\"");
    if (rn(4) == 0)
        puts_(",\"admin\"");
    puts_("]},\"trace\":{\"trace_id\":\"");
    put_hex(32);
    puts_("\",\"span_id\":\"");
    put_hex(16);
    puts_("\"},\"kubernetes\":{\"namespace\":\"");
    puts_(PICK(namespaces));
    puts_("\",\"pod\":\"");
    puts_(PICK(apps));
    putc_('-');
    put_hex(5);
    puts_("\"}}");
}

static void json_line(void)
{
    json_record(true);
    putc_('\n');
    total_lines++;
}

/* CRI: "TS stdout F payload"; a long payload is split into P parts, the last one F. */
static void cri_line(void)
{
    size_t pstart = olen + 4096; /* build the payload past where the lines will go */
    size_t save = olen;
    olen = pstart;
    json_record(true);
    size_t plen = olen - pstart;
    olen = save;
    static char payload[MAX_LINE];
    memcpy(payload, out + pstart, plen);
    size_t piece = plen;
    if (plen > 1024 && rn(3) == 0)
        piece = range(256, (uint32_t)(plen / 2)); /* kubelet splits at 16 KiB; smaller here */
    /* one stream for all the pieces of a line, as a runtime writes them */
    const char *stream = rn(10) == 0 ? " stderr " : " stdout ";
    for (size_t off = 0; off < plen; off += piece) {
        size_t n = plen - off < piece ? plen - off : piece;
        put_ts_nanos();
        puts_(stream);
        putc_(off + n < plen ? 'P' : 'F');
        putc_(' ');
        put(payload + off, n);
        putc_('\n');
        total_lines++;
    }
}

/* Docker json-file: the message JSON-escaped inside "log", always valid UTF-8. */
static void docker_line(void)
{
    puts_("{\"log\":\"");
    if (rn(2)) {
        size_t s = olen + 8192, save = olen;
        olen = s;
        json_record(false);
        size_t n = olen - s;
        olen = save;
        memmove(out + olen + n, out + s, n); /* room to escape in place: at most 2x */
        const char *src = out + olen + n;
        for (size_t i = 0; i < n; i++) {
            if (src[i] == '"' || src[i] == '\\')
                putc_('\\');
            putc_(src[i]);
        }
    } else {
        puts_(clk_java);
        puts_(" INFO ");
        put_text(msg_len());
    }
    puts_("\\n\",\"stream\":\"");
    puts_(rn(8) == 0 ? "stderr" : "stdout");
    puts_("\",\"time\":\"");
    put_ts_nanos();
    puts_("\"}\n");
    total_lines++;
}

static const char *const jpkgs[] = {
    "com.example.orders", "com.example.payments.gateway", "org.springframework.web.servlet",
    "io.netty.channel",   "com.zaxxer.hikari.pool",       "java.base/java.util.concurrent"};
static const char *const jclasses[] = {
    "OrderService", "PaymentClient",      "DispatcherServlet", "AbstractChannelHandlerContext",
    "HikariPool",   "ThreadPoolExecutor", "RetryTemplate",     "Controller"};
static const char *const jmethods[] = {"process", "invoke",        "doDispatch", "handle",
                                       "run",     "getConnection", "execute",    "lambda$submit$0"};
static const char *const jexc[] = {"java.lang.IllegalStateException", "java.io.IOException",
                                   "java.sql.SQLTransientConnectionException",
                                   "java.util.concurrent.TimeoutException",
                                   "java.lang.NullPointerException"};

static void java_frames(uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        puts_("\tat ");
        puts_(PICK(jpkgs));
        putc_('.');
        puts_(PICK(jclasses));
        putc_('.');
        puts_(PICK(jmethods));
        putc_('(');
        puts_(PICK(jclasses));
        puts_(".java:");
        put_u(range(20, 2000));
        puts_(")\n");
        total_lines++;
    }
}

/* A Java log line; one in ten carries a stack trace (a multiline record). */
static void java_record(void)
{
    bool trace = rn(10) == 0;
    puts_(clk_java);
    putc_(',');
    put_uw((uint64_t)(clk_ns % 1000000000LL) / 1000000, 3);
    puts_(trace ? " ERROR " : " INFO  ");
    puts_("[http-nio-8080-exec-");
    put_u(range(1, 200));
    puts_("] ");
    puts_(PICK(jpkgs));
    putc_('.');
    puts_(PICK(jclasses));
    puts_(" - ");
    put_text(trace ? range(20, 120) : msg_len());
    maybe_bad();
    putc_('\n');
    total_lines++;
    if (!trace)
        return;
    puts_(PICK(jexc));
    puts_(": ");
    put_text(range(10, 200));
    putc_('\n');
    total_lines++;
    java_frames(range(5, 30));
    if (rn(3) == 0) {
        puts_("Caused by: ");
        puts_(PICK(jexc));
        puts_(": ");
        put_text(range(10, 100));
        putc_('\n');
        total_lines++;
        java_frames(range(2, 8));
        puts_("\t... ");
        put_u(range(5, 60));
        puts_(" more\n");
        total_lines++;
    }
}

static void record(enum fmt f)
{
    tick();
    if (f == F_MIXED) {
        uint32_t r = rn(100);
        f = r < 30 ? F_NGINX : r < 60 ? F_JSON : r < 80 ? F_CRI : r < 90 ? F_DOCKER : F_JAVA;
    }
    switch (f) {
    case F_NGINX:
        nginx_line();
        break;
    case F_JSON:
        json_line();
        break;
    case F_CRI:
        cri_line();
        break;
    case F_DOCKER:
        docker_line();
        break;
    default:
        java_record();
        break;
    }
}

/* ---- command line ------------------------------------------------------------------ */

static int parse_size(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || d < 0)
        return -1;
    uint64_t mul = 1;
    if (*end) {
        static const char *const suf[] = {"K",   "M", "G",  "KiB", "MiB",
                                          "GiB", "k", "KB", "MB",  "GB"};
        static const uint64_t mult[] = {1ULL << 10, 1ULL << 20, 1ULL << 30, 1ULL << 10, 1ULL << 20,
                                        1ULL << 30, 1ULL << 10, 1000,       1000000,    1000000000};
        size_t i;
        for (i = 0; i < sizeof(suf) / sizeof(suf[0]); i++)
            if (strcmp(end, suf[i]) == 0)
                break;
        if (i == sizeof(suf) / sizeof(suf[0]))
            return -1;
        mul = mult[i];
    }
    *v = (uint64_t)(d * (double)mul);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: gen [--format nginx|json|cri|docker|java|mixed] [--bytes SIZE | --lines N]\n"
               "           [--seed S] [--invalid-permille P]\n");
}

int main(int argc, char **argv)
{
    enum fmt f = F_MIXED;
    uint64_t bytes = 0, lines = 0, seed = 1, v;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (!val) {
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--format") == 0) {
            int k;
            for (k = 0; fmt_names[k]; k++)
                if (strcmp(val, fmt_names[k]) == 0)
                    break;
            if (!fmt_names[k]) {
                fprintf(stderr, "gen: unknown format '%s'\n", val);
                return 2;
            }
            f = (enum fmt)k;
        } else if (strcmp(a, "--bytes") == 0 && parse_size(val, &v) == 0) {
            bytes = v;
        } else if (strcmp(a, "--lines") == 0 && parse_size(val, &v) == 0) {
            lines = v;
        } else if (strcmp(a, "--seed") == 0 && parse_size(val, &v) == 0) {
            seed = v;
        } else if (strcmp(a, "--invalid-permille") == 0 && parse_size(val, &v) == 0 && v <= 1000) {
            invalid_permille = (uint32_t)v;
        } else {
            fprintf(stderr, "gen: bad option or value: %s %s\n", a, val);
            usage(stderr);
            return 2;
        }
    }
    if ((bytes == 0) == (lines == 0)) {
        fprintf(stderr, "gen: give exactly one of --bytes and --lines (greater than 0)\n");
        return 2;
    }
    uint64_t sm = seed;
    for (int i = 0; i < 4; i++)
        rs[i] = splitmix64(&sm);
    out = malloc(OUT_CAP);
    pool = malloc(POOL_SIZE);
    if (!out || !pool) {
        fprintf(stderr, "gen: out of memory\n");
        return 1;
    }
    build_pool();

    for (;;) {
        size_t start = olen;
        uint64_t before = total_lines;
        record(f);
        if (lines && total_lines >= lines) {
            /* cut after the line that makes the count exact */
            uint64_t keep = lines - before;
            size_t p = start;
            for (uint64_t k = 0; k < keep; k++)
                p = (size_t)((char *)memchr(out + p, '\n', olen - p) - out) + 1;
            olen = p;
            total_lines = lines;
        }
        bool done = lines ? total_lines >= lines : total_bytes + olen >= bytes;
        if (olen >= OUT_FLUSH || done) {
            total_bytes += olen;
            int rc = flush_out();
            if (rc) {
                fprintf(stderr, "gen: write: %s\n", strerror(-rc));
                return 1;
            }
        }
        if (done)
            break;
    }
    fprintf(stderr, "gen: lines=%" PRIu64 " bytes=%" PRIu64 " invalid_utf8=%" PRIu64 "\n",
            total_lines, total_bytes, total_invalid);
    free(out);
    free(pool);
    return 0;
}
