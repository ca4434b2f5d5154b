/*
 * fuzz_condition.c - libFuzzer target for the condition language (model/condition.c).
 *
 * Every input is compiled as a condition; an input that compiles is evaluated against an
 * event with strings, numbers, escapes, nested objects and arrays, and the error offset of
 * one that does not must lie within the text. Beyond "no crash, no sanitizer report",
 * evaluation must be deterministic (the same answer twice: no state leaks between calls).
 *
 * Run: build with clang (tests/fuzz/fuzz.cmake), then ./fuzz_condition corpus/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/condition.h"
#include "model/fields.h"
#include "model/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char event_json[] =
    "{\"level\":\"error\",\"code\":500,\"s\":\"a\\\"b\\u00e9\",\"ok\":false,\"nil\":null,"
    "\"tags\":[\"x\",{\"k\":[1,\"y\"]},2.5],\"user\":{\"id\":7,\"name\":\"ann\","
    "\"deep\":{\"er\":{\"est\":\"z\"}}},\"odd.key\":\"v\"}";

static struct mars_batch *event(void)
{
    static const char line[] = "GET /api/v1/users took 12ms";
    struct mars_batch *b = mars_batch_create(1);
    struct mars_event *ev = mars_batch_push(b);
    struct mars_fbuild fb;
    size_t at;
    ev->msg = (struct mars_slice){line, sizeof(line) - 1};
    ev->ts_ns = 1704067200000000000LL;
    mars_fbuild_init(&fb);
    mars_fbuild_reset(&fb, &b->arena);
    if (mars_json_parse(event_json, sizeof(event_json) - 1, 64, &fb, 0, &at) != MARS_JSON_OK ||
        mars_fields_merge(b, ev, &fb, NULL) != 0)
        abort();
    mars_fbuild_fini(&fb);
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mars_batch *b;
    if (!b)
        b = event(); /* kept for the process: the event never changes */
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    struct mars_cond_error err;
    struct mars_cond *c = mars_cond_compile(text, &err);
    if (c) {
        bool a = mars_cond_eval(c, &b->ev[0]);
        if (mars_cond_eval(c, &b->ev[0]) != a)
            abort();
        mars_cond_destroy(c);
    } else if (err.offset > strlen(text) || !err.msg[0]) {
        abort();
    }
    free(text);
    return 0;
}
