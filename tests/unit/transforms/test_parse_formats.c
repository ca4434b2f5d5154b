/*
 * Unit tests of the parse formats (parse_formats.c), table-driven from their
 * specifications: RFC 5424 and RFC 3164 examples, the Apache and nginx combined log
 * format, CRI and Docker json-file lines, logfmt and key/value pairs; each with the exact
 * fields (kind and value), the time the format carries, and malformed input.
 *
 * Fields are shown compactly: key:string  key#number  key!bool  key{members}  key[array],
 * separated by '|'.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "transforms/parse_internal.h"

#define S 1000000000LL

static void dump(const struct mars_fbuild *fb, uint32_t obj, char *out, size_t cap, size_t *o)
{
    static const char marks[] = {':', '#', '!', '~', '{', '['};
    for (uint32_t i = fb->v[obj].first; i != MARS_FIELD_NIL; i = fb->v[i].next) {
        const struct mars_field *f = &fb->v[i];
        *o += (size_t)snprintf(out + *o, cap - *o, "%s%.*s%c", i == fb->v[obj].first ? "" : "|",
                               (int)f->key_len, f->key, marks[f->kind]);
        if (f->kind == MARS_FIELD_OBJECT) {
            dump(fb, i, out, cap, o);
            *o += (size_t)snprintf(out + *o, cap - *o, "}");
        } else if (f->kind == MARS_FIELD_ARRAY) {
            *o +=
                (size_t)snprintf(out + *o, cap - *o, "%.*s]", (int)f->value_len - 2, f->value + 1);
        } else if (f->kind != MARS_FIELD_NULL) {
            *o += (size_t)snprintf(out + *o, cap - *o, "%.*s", (int)f->value_len, f->value);
        }
    }
}

struct pcase {
    const char *in;
    const char *want; /* dump, or NULL for an error */
    int64_t ts;       /* expected event time (seconds), 0: none */
};

/* 2024-03-15T12:00:00Z: "now" for year-less syslog times */
#define NOW (1710504000LL * S)

static void run(mars_parse_fn fn, const struct pcase *c, size_t n)
{
    struct mars_parse_ctx ctx = {0};
    struct mars_arena arena;
    assert_int_equal(mars_parse_ctx_init(&ctx), 0);
    ctx.max_depth = 64;
    mars_arena_init(&arena);
    for (size_t i = 0; i < n; i++) {
        char out[2048];
        size_t o = 0;
        mars_fbuild_reset(&ctx.fb, &arena);
        ctx.has_ts = false;
        ctx.now_ns = NOW;
        ctx.why = NULL;
        int rc = fn(&ctx, c[i].in, strlen(c[i].in));
        if (!c[i].want) {
            if (rc == 0)
                fail_msg("case %zu '%s' parsed, want an error", i, c[i].in);
            assert_non_null(ctx.why);
            continue;
        }
        if (rc)
            fail_msg("case %zu '%s': %s", i, c[i].in, ctx.why);
        out[0] = '\0';
        dump(&ctx.fb, 0, out, sizeof(out), &o);
        if (strcmp(out, c[i].want) != 0)
            fail_msg("case %zu '%s':\n  want %s\n  got  %s", i, c[i].in, c[i].want, out);
        if (c[i].ts && (!ctx.has_ts || ctx.ts_ns / S != c[i].ts))
            fail_msg("case %zu: time %lld, want %lld", i, (long long)(ctx.ts_ns / S),
                     (long long)c[i].ts);
    }
    mars_arena_fini(&arena);
    mars_parse_ctx_fini(&ctx);
}

#define RUN(fn, cases) run(fn, cases, sizeof(cases) / sizeof(cases[0]))

static void test_syslog_rfc5424(void **state)
{
    static const struct pcase cases[] = {
        /* RFC 5424 section 6.5, examples 1-4 */
        {"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
         "\xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8",
         "facility:auth|severity:crit|version#1|hostname:mymachine.example.com|appname:su|"
         "msgid:ID47|message:'su root' failed for lonvick on /dev/pts/8",
         1065910455},
        {"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to "
         "make the do-nuts.",
         "facility:local4|severity:notice|version#1|hostname:192.0.2.1|appname:myproc|"
         "procid#8710|message:%% It's time to make the do-nuts.",
         1061727255},
        {"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
         "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] "
         "An application event log entry...",
         "facility:local4|severity:notice|version#1|hostname:mymachine.example.com|"
         "appname:evntslog|msgid:ID47|structured_data{exampleSDID@32473{iut:3|"
         "eventSource:Application|eventID:1011}}|message:An application event log entry...",
         1065910455},
        {"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
         "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]"
         "[examplePriority@32473 class=\"high\"]",
         "facility:local4|severity:notice|version#1|hostname:mymachine.example.com|"
         "appname:evntslog|msgid:ID47|structured_data{exampleSDID@32473{iut:3|"
         "eventSource:Application|eventID:1011}|examplePriority@32473{class:high}}|message:",
         1065910455},
        /* escapes in SD values (\" \\ \]), all-nil header, empty SD element */
        {"<0>1 - - - - - [a@1 k=\"q\\\"b\\\\s\\]e\"][b@1] m",
         "facility:kern|severity:emerg|version#1|structured_data{a@1{k:q\"b\\s]e}|b@1{}}|message:m",
         0},
        {"<191>1 - - - - - -", "facility:local7|severity:debug|version#1|message:", 0},
        /* malformed */
        {"<192>1 - - - - - - x", NULL, 0},
        {"<01>1 - - - - - - x", NULL, 0},
        {"<13>1 2003-10-11T22:14:15Z host", NULL, 0},
        {"<13>1 notatime host app - - - x", NULL, 0},
        {"<13>1 - host app - - [unterminated k=\"v\" x", NULL, 0},
        {"<13>1 - host app - - [id k=v] x", NULL, 0},
        {"<13>1 - host app - - garbage x", NULL, 0},
        {"<13", NULL, 0},
    };
    RUN(mars_parse_syslog, cases);
    (void)state;
}

static void test_syslog_rfc3164(void **state)
{
    static const struct pcase cases[] = {
        /* RFC 3164 section 5.4, examples 1 and 2 */
        {"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
         "facility:auth|severity:crit|hostname:mymachine|appname:su|message:'su root' failed "
         "for lonvick on /dev/pts/8",
         1697062455},
        {"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
         "facility:user|severity:notice|hostname:10.0.0.99|message:Use the BFG!", 1707154338},
        /* files without PRI, tags with pids, an RFC 3339 time (rsyslog) */
        {"Mar  1 08:00:00 web1 nginx[1234]: started",
         "hostname:web1|appname:nginx|procid#1234|message:started", 1709280000},
        {"Mar  1 08:00:00 web1 kernel: [  1.0] x", "hostname:web1|appname:kernel|message:[  1.0] x",
         1709280000},
        {"2024-03-01T08:00:00.5+01:00 web1 cron[x1]: job",
         "hostname:web1|appname:cron|procid:x1|message:job", 1709276400},
        {"<13>Dec 31 23:59:59 h app:",
         "facility:user|severity:notice|hostname:h|appname:app|message:", 1704067199},
        /* malformed */
        {"<13>Oct 11 22:14 host x", NULL, 0},
        {"just text", NULL, 0},
        {"<13>Oct 11 22:14:15", NULL, 0},
        {"", NULL, 0},
    };
    RUN(mars_parse_syslog, cases);
    (void)state;
}

static void test_combined(void **state)
{
    static const struct pcase apache[] = {
        /* the Apache documentation's combined log example */
        {"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 "
         "2326 \"http://www.example.com/start.html\" \"Mozilla/4.08 [en] (Win98; I ;Nav)\"",
         "client:127.0.0.1|user:frank|request:GET /apache_pb.gif HTTP/1.0|method:GET|"
         "path:/apache_pb.gif|protocol:HTTP/1.0|status#200|size#2326|"
         "referer:http://www.example.com/start.html|agent:Mozilla/4.08 [en] (Win98; I ;Nav)",
         971211336},
        {"::1 ident - [01/Jan/2024:00:00:00 +0000] \"GET /a\\\"b HTTP/1.1\" 304 - \"-\" \"-\"",
         "client:::1|ident:ident|request:GET /a\\\"b HTTP/1.1|method:GET|path:/a\\\"b|"
         "protocol:HTTP/1.1|status#304|size#0",
         1704067200},
        {"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"-\" 408 0 \"-\" \"-\"",
         "client:1.2.3.4|request:-|status#408|size#0", 1704067200},
        {"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\" \"x\"",
         NULL, 0},
        {"1.2.3.4 - - [01/Jan/2024:00:00:00] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"", NULL, 0},
        {"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"GET / HTTP/1.1\" OK 1 \"-\" \"-\"", NULL, 0},
        {"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\"", NULL, 0},
        {"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"GET / HTTP/1.1 200 1 \"-\" \"-\"", NULL, 0},
        {"1.2.3.4 - -", NULL, 0},
    };
    static const struct pcase nginx[] = {
        {"10.0.0.1 - - [15/Mar/2024:12:00:00 +0100] \"POST /api?q=1 HTTP/2.0\" 201 17 "
         "\"https://x/\" \"curl/8.0\" \"203.0.113.9, 10.0.0.2\"",
         "client:10.0.0.1|request:POST /api?q=1 HTTP/2.0|method:POST|path:/api?q=1|"
         "protocol:HTTP/2.0|status#201|size#17|referer:https://x/|agent:curl/8.0|"
         "forwarded_for:203.0.113.9, 10.0.0.2",
         1710500400},
        {"10.0.0.1 - - [15/Mar/2024:12:00:00 +0000] \"\\x16\\x03\\x01\" 400 157 \"-\" \"-\" \"-\"",
         "client:10.0.0.1|request:\\x16\\x03\\x01|status#400|size#157", 1710504000},
        {"10.0.0.1 - - [15/Mar/2024:12:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\" junk",
         NULL, 0},
    };
    RUN(mars_parse_apache, apache);
    RUN(mars_parse_nginx, nginx);
    (void)state;
}

static void test_cri_and_docker(void **state)
{
    static const struct pcase cri[] = {
        {"2016-10-06T00:17:09.669794202Z stdout F The content of the log entry 1",
         "message:The content of the log entry 1|stream:stdout|logtag:F", 1475713029},
        {"2016-10-06T00:17:09.669794202Z stdout P First line of log entry 2",
         "message:First line of log entry 2|stream:stdout|logtag:P", 1475713029},
        {"2016-10-06T00:17:10.113242941Z stderr F ", "message:|stream:stderr|logtag:F", 1475713030},
        {"2016-10-06T00:17:10.113242941Z stderr F", "message:|stream:stderr|logtag:F", 1475713030},
        {"2016-10-06T00:17:10Z stdout F:x  two  spaces",
         "message: two  spaces|stream:stdout|logtag:F:x", 1475713030},
        {"2016-10-06T00:17:09Z stdin F x", NULL, 0},
        {"2016-10-06 stdout F x", NULL, 0},
        {"2016-10-06T00:17:09Z stdout X x", NULL, 0},
        {"2016-10-06T00:17:09Z stdout", NULL, 0},
    };
    static const struct pcase docker[] = {
        {"{\"log\":\"hello world\\n\",\"stream\":\"stdout\",\"time\":\"2019-02-04T10:05:45.123Z\"}",
         "message:hello world|stream:stdout", 1549274745},
        {"{\"log\":\"no newline\",\"stream\":\"stderr\",\"time\":\"2019-02-04T10:05:45Z\","
         "\"attrs\":{\"tag\":\"t\"}}",
         "message:no newline|stream:stderr|attrs{tag:t}", 1549274745},
        {"{\"log\":\"tab\\there \\u00e9\\n\",\"stream\":\"stdout\"}",
         "message:tab\there \xc3\xa9|stream:stdout", 0},
        {"{\"stream\":\"stdout\"}", NULL, 0},
        {"{\"log\":1}", NULL, 0},
        {"not json", NULL, 0},
    };
    RUN(mars_parse_cri, cri);
    RUN(mars_parse_docker, docker);
    (void)state;
}

static void test_logfmt(void **state)
{
    static const struct pcase cases[] = {
        {"at=info method=GET path=/ host=mutelight.org fwd=\"124.133.52.161\" dyno=web.2 "
         "connect=4ms service=8ms status=200 bytes=1653",
         "at:info|method:GET|path:/|host:mutelight.org|fwd:124.133.52.161|dyno:web.2|"
         "connect:4ms|service:8ms|status:200|bytes:1653",
         0},
        {"a=1 flag b= c=\"x y\"  d=\"q\\\"u\\\\o\\nte\"", "a:1|flag!true|b:|c:x y|d:q\"u\\o\nte",
         0},
        {"k=\"\\u00e9\" k=last", "k:last", 0},
        {"  lead=1 ", "lead:1", 0},
        {"a=\"unterminated", NULL, 0},
        {"=value", NULL, 0},
        {"\"q\"=1", NULL, 0},
        {"a=b\"c", NULL, 0},
        {"a=\"x\"b", NULL, 0},
        {"", NULL, 0},
        {"   ", NULL, 0},
    };
    RUN(mars_parse_logfmt, cases);
    (void)state;
}

static void test_key_value(void **state)
{
    static const struct pcase spaces[] = {
        {"user = alice  role='ops team' x=\"a\\\"b\" solo",
         "user:alice|role:ops team|x:a\"b|solo!true", 0},
        {"=1", NULL, 0},
    };
    RUN(mars_parse_key_value, spaces);
    struct mars_parse_ctx ctx = {0};
    struct mars_arena arena;
    mars_parse_ctx_init(&ctx);
    mars_arena_init(&arena);
    ctx.fdelim = ", ";
    ctx.fdelim_len = 2;
    ctx.vdelim = ": ";
    ctx.vdelim_len = 2;
    mars_fbuild_reset(&ctx.fb, &arena);
    const char *in = "host: a.b, port: 80, path: /x: y";
    assert_int_equal(mars_parse_key_value(&ctx, in, strlen(in)), 0);
    char out[256];
    size_t o = 0;
    dump(&ctx.fb, 0, out, sizeof(out), &o);
    assert_string_equal(out, "host:a.b|port:80|path:/x: y");
    mars_arena_fini(&arena);
    mars_parse_ctx_fini(&ctx);
    (void)state;
}

static void test_json_format(void **state)
{
    static const struct pcase cases[] = {
        {"{\"a\":{\"b\":[1,2]},\"c\":null}", "a{b[1,2]}|c~", 0},
        {"{\"a\":1", NULL, 0},
        {"[1]", NULL, 0},
    };
    RUN(mars_parse_json, cases);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syslog_rfc5424), cmocka_unit_test(test_syslog_rfc3164),
        cmocka_unit_test(test_combined),       cmocka_unit_test(test_cri_and_docker),
        cmocka_unit_test(test_logfmt),         cmocka_unit_test(test_key_value),
        cmocka_unit_test(test_json_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
