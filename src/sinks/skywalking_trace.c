/*
 * skywalking_trace.c - trace segments (events flagged MARS_EVF_TRACE, made by the
 * apm_socket source from SkyAPM `1` records) as TraceSegmentReportService/collect messages:
 * one client stream per request, one message per segment.
 *
 * The event's message is the record's JSON as the PHP extension wrote it (shared/
 * protocols.md §14): top level traceId, service, serviceInstance (SkyAPM v8) or
 * application_id, application_instance, globalTraceIds (v6/7), and segment{traceSegmentId,
 * isSizeLimited, spans[]}. It is decoded here, once, when the request is encoded:
 *
 *   v8+ (protocol v8)  skywalking.v3 SegmentObject: traceId (or the first globalTraceIds),
 *                      traceSegmentId, service and serviceInstance (the record's, else the
 *                      sink's own), spans with refs (traceId, parent segment, span, service,
 *                      instance, endpoint, network address), tags, logs, skipAnalysis.
 *   v6/7 (protocol v6) V6UpstreamSegment: globalTraceIds and the dotted ids ("1.2.3") as
 *                      UniqueId parts, the segment packed as a V6SegmentObject with the
 *                      numeric service and instance ids (the record's, else the sink's); in
 *                      refs an address or endpoint written "#name" is a name, a bare number
 *                      an id, as SkyAPM's own agent reads them.
 *
 * spanType and spanLayer are numbers (SkyAPM) or the enum names; isError, isSizeLimited
 * and skipAnalysis are booleans or 0/1; tags are an object {k: v} or a list of
 * {key, value}. A record that cannot be converted (not JSON, no traceSegmentId, a dotted
 * id that is not numbers on v6) is skipped and counted by the caller.
 *
 * Memory: every string and message of one request lives in a per-request arena, freed
 * when the request is encoded.
 *
 * Thread: the sink's worker.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "sinks/skywalking_internal.h"
#include "skywalking/tracing.pb-c.h"
#include "skywalking/tracing_v6.pb-c.h"

#define MAX_IDS 8 /* parts of a dotted v6 id, global trace ids kept */

struct tr {
    struct sw_sink *sw;
    struct mars_arena a;
    struct mars_skywalking_ids own;
};

/* ---- JSON access (on validated raw text) ---- */

static bool jget(const char *s, size_t n, const char *key, struct mars_value *v)
{
    return mars_json_object_get(s, n, key, (uint32_t)strlen(key), v);
}

/* The value's text, NUL-terminated in the arena ("" when absent or not a scalar). */
static char *vtext(struct tr *t, const struct mars_value *v)
{
    uint32_t len = 0;
    if (v->kind == MARS_FIELD_OBJECT || v->kind == MARS_FIELD_ARRAY || v->kind == MARS_FIELD_NULL)
        return "";
    const char *p = mars_value_text_arena(v, &t->a, &len);
    return p ? mars_arena_strndup(&t->a, p, len) : NULL;
}

static char *jstr(struct tr *t, const char *s, size_t n, const char *key)
{
    struct mars_value v;
    return jget(s, n, key, &v) ? vtext(t, &v) : "";
}

static double jnum(const char *s, size_t n, const char *key)
{
    struct mars_value v;
    double d;
    return jget(s, n, key, &v) && mars_value_number(&v, &d) && isfinite(d) ? d : 0;
}

static bool jbool(const char *s, size_t n, const char *key)
{
    struct mars_value v;
    double d;
    if (!jget(s, n, key, &v))
        return false;
    if (v.kind == MARS_FIELD_BOOL)
        return v.len == 4;
    return mars_value_number(&v, &d) && d != 0;
}

/* An enum given as a number or by one of its names (index = value). */
static int jenum(const char *s, size_t n, const char *key, const char *const *names)
{
    struct mars_value v;
    double d;
    if (!jget(s, n, key, &v))
        return 0;
    if (mars_value_number(&v, &d))
        return d >= 0 && d < 16 ? (int)d : 0;
    for (int i = 0; v.kind == MARS_FIELD_STRING && names[i]; i++)
        if (strlen(names[i]) == v.len && memcmp(names[i], v.ptr, v.len) == 0)
            return i;
    return 0;
}

static const char *const span_types[] = {"Entry", "Exit", "Local", NULL};
static const char *const span_layers[] = {"Unknown", "Database", "RPCFramework", "Http",
                                          "MQ",      "Cache",    "FAAS",         NULL};
static const char *const ref_types[] = {"CrossProcess", "CrossThread", NULL};

static int32_t i32(double d)
{
    return d >= INT32_MIN && d <= INT32_MAX ? (int32_t)d : 0;
}

/* Counts the elements of an array value (0 when it is not one). */
static size_t count_of(const struct mars_value *arr)
{
    struct mars_value v;
    size_t pos = 0, k = 0;
    while (arr->kind == MARS_FIELD_ARRAY && mars_json_array_next(arr->ptr, arr->len, &pos, &v))
        k++;
    return k;
}

/* Key/value pairs from an object {k: v} or a list [{key, value}]: *n pairs in the arena
 * as (key, value) string pairs. Returns false on -ENOMEM. */
static bool pairs(struct tr *t, const char *s, size_t n, const char *key, char ***kv, size_t *np)
{
    struct mars_value v, k, x;
    size_t pos = 0, cap = 0, i = 0;
    *np = 0;
    *kv = NULL;
    if (!jget(s, n, key, &v))
        return true;
    if (v.kind == MARS_FIELD_OBJECT)
        while (mars_json_object_next(v.ptr, v.len, &pos, &k, &x))
            cap++;
    else
        cap = count_of(&v);
    if (!cap)
        return true;
    *kv = mars_arena_alloc(&t->a, 2 * cap * sizeof(char *));
    if (!*kv)
        return false;
    pos = 0;
    if (v.kind == MARS_FIELD_OBJECT) {
        while (i < cap && mars_json_object_next(v.ptr, v.len, &pos, &k, &x)) {
            (*kv)[2 * i] = vtext(t, &k);
            (*kv)[2 * i + 1] = vtext(t, &x);
            if (!(*kv)[2 * i] || !(*kv)[2 * i + 1])
                return false;
            i++;
        }
    } else {
        while (i < cap && mars_json_array_next(v.ptr, v.len, &pos, &x)) {
            if (x.kind != MARS_FIELD_OBJECT)
                continue;
            (*kv)[2 * i] = jstr(t, x.ptr, x.len, "key");
            (*kv)[2 * i + 1] = jstr(t, x.ptr, x.len, "value");
            if (!(*kv)[2 * i] || !(*kv)[2 * i + 1])
                return false;
            i++;
        }
    }
    *np = i;
    return true;
}

/* ---- v3 (protocol v8) ---- */

static Skywalking__V3__KeyStringValuePair **v3_kvs(struct tr *t, char **kv, size_t n)
{
    Skywalking__V3__KeyStringValuePair *o = mars_arena_alloc(&t->a, (n + 1) * sizeof(*o));
    Skywalking__V3__KeyStringValuePair **p = mars_arena_alloc(&t->a, (n + 1) * sizeof(*p));
    if (!o || !p)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        o[i] = (Skywalking__V3__KeyStringValuePair)SKYWALKING__V3__KEY_STRING_VALUE_PAIR__INIT;
        o[i].key = kv[2 * i];
        o[i].value = kv[2 * i + 1];
        p[i] = &o[i];
    }
    return p;
}

static int v3_span(struct tr *t, const char *s, size_t n, const char *trace_id,
                   Skywalking__V3__SpanObject *sp)
{
    struct mars_value arr, v;
    char **kv;
    size_t nkv, pos = 0;
    *sp = (Skywalking__V3__SpanObject)SKYWALKING__V3__SPAN_OBJECT__INIT;
    sp->spanid = i32(jnum(s, n, "spanId"));
    sp->parentspanid = i32(jnum(s, n, "parentSpanId"));
    sp->starttime = (int64_t)jnum(s, n, "startTime");
    sp->endtime = (int64_t)jnum(s, n, "endTime");
    sp->operationname = jstr(t, s, n, "operationName");
    sp->peer = jstr(t, s, n, "peer");
    sp->spantype = (Skywalking__V3__SpanType)jenum(s, n, "spanType", span_types);
    sp->spanlayer = (Skywalking__V3__SpanLayer)jenum(s, n, "spanLayer", span_layers);
    sp->componentid = i32(jnum(s, n, "componentId"));
    sp->iserror = jbool(s, n, "isError");
    sp->skipanalysis = jbool(s, n, "skipAnalysis");
    if (!sp->operationname || !sp->peer || !pairs(t, s, n, "tags", &kv, &nkv) ||
        (nkv && !(sp->tags = v3_kvs(t, kv, nkv))))
        return -ENOMEM;
    sp->n_tags = nkv;
    if (jget(s, n, "refs", &arr) && (sp->n_refs = count_of(&arr))) {
        Skywalking__V3__SegmentReference *r = mars_arena_alloc(&t->a, sp->n_refs * sizeof(*r));
        sp->refs = mars_arena_alloc(&t->a, sp->n_refs * sizeof(*sp->refs));
        if (!r || !sp->refs)
            return -ENOMEM;
        size_t i = 0;
        while (i < sp->n_refs && mars_json_array_next(arr.ptr, arr.len, &pos, &v)) {
            const char *o = v.ptr;
            size_t on = v.len;
            r[i] = (Skywalking__V3__SegmentReference)SKYWALKING__V3__SEGMENT_REFERENCE__INIT;
            r[i].reftype = (Skywalking__V3__RefType)(jget(o, on, "refType", &v)
                                                         ? jenum(o, on, "refType", ref_types)
                                                         : jenum(o, on, "type", ref_types));
            r[i].traceid = jstr(t, o, on, "traceId");
            if (r[i].traceid && !r[i].traceid[0])
                r[i].traceid = (char *)trace_id;
            r[i].parenttracesegmentid = jstr(t, o, on, "parentTraceSegmentId");
            r[i].parentspanid = i32(jnum(o, on, "parentSpanId"));
            r[i].parentservice = jstr(t, o, on, "parentService");
            r[i].parentserviceinstance = jstr(t, o, on, "parentServiceInstance");
            r[i].parentendpoint = jstr(t, o, on, "parentEndpoint");
            r[i].networkaddressusedatpeer = jstr(t, o, on, "networkAddressUsedAtPeer");
            if (r[i].networkaddressusedatpeer && !r[i].networkaddressusedatpeer[0])
                r[i].networkaddressusedatpeer = jstr(t, o, on, "networkAddress");
            if (!r[i].traceid || !r[i].parenttracesegmentid || !r[i].parentservice ||
                !r[i].parentserviceinstance || !r[i].parentendpoint ||
                !r[i].networkaddressusedatpeer)
                return -ENOMEM;
            sp->refs[i] = &r[i];
            i++;
        }
        sp->n_refs = i;
    }
    if (jget(s, n, "logs", &arr) && (sp->n_logs = count_of(&arr))) {
        Skywalking__V3__SpanLog *l = mars_arena_alloc(&t->a, sp->n_logs * sizeof(*l));
        sp->logs = mars_arena_alloc(&t->a, sp->n_logs * sizeof(*sp->logs));
        if (!l || !sp->logs)
            return -ENOMEM;
        size_t i = 0;
        pos = 0;
        while (i < sp->n_logs && mars_json_array_next(arr.ptr, arr.len, &pos, &v)) {
            if (v.kind != MARS_FIELD_OBJECT)
                continue;
            l[i] = (Skywalking__V3__SpanLog)SKYWALKING__V3__SPAN_LOG__INIT;
            l[i].time = (int64_t)jnum(v.ptr, v.len, "time");
            if (!pairs(t, v.ptr, v.len, "data", &kv, &nkv) ||
                (nkv && !(l[i].data = v3_kvs(t, kv, nkv))))
                return -ENOMEM;
            l[i].n_data = nkv;
            sp->logs[i] = &l[i];
            i++;
        }
        sp->n_logs = i;
    }
    return 0;
}

/* Returns 0, -ENOMEM, or -EINVAL for a record that is no segment. */
static int v3_segment(struct tr *t, const char *s, size_t n, struct mars_grpc_buf *b)
{
    struct mars_value seg, arr, v;
    if (!jget(s, n, "segment", &seg) || seg.kind != MARS_FIELD_OBJECT)
        return -EINVAL;
    Skywalking__V3__SegmentObject so = SKYWALKING__V3__SEGMENT_OBJECT__INIT;
    so.traceid = jstr(t, s, n, "traceId");
    if (so.traceid && !so.traceid[0] && jget(s, n, "globalTraceIds", &arr) &&
        mars_json_array_at(arr.ptr, arr.len, 0, &v))
        so.traceid = vtext(t, &v);
    so.tracesegmentid = jstr(t, seg.ptr, seg.len, "traceSegmentId");
    so.service = jstr(t, s, n, "service");
    so.serviceinstance = jstr(t, s, n, "serviceInstance");
    if (!so.traceid || !so.tracesegmentid || !so.service || !so.serviceinstance)
        return -ENOMEM;
    if (!so.tracesegmentid[0])
        return -EINVAL;
    if (!so.service[0])
        so.service = t->own.service;
    if (!so.serviceinstance[0])
        so.serviceinstance = t->own.instance;
    so.issizelimited = jbool(seg.ptr, seg.len, "isSizeLimited");
    if (jget(seg.ptr, seg.len, "spans", &arr) && (so.n_spans = count_of(&arr))) {
        Skywalking__V3__SpanObject *sp = mars_arena_alloc(&t->a, so.n_spans * sizeof(*sp));
        so.spans = mars_arena_alloc(&t->a, so.n_spans * sizeof(*so.spans));
        if (!sp || !so.spans)
            return -ENOMEM;
        size_t i = 0, pos = 0;
        while (i < so.n_spans && mars_json_array_next(arr.ptr, arr.len, &pos, &v)) {
            if (v.kind != MARS_FIELD_OBJECT)
                continue;
            if (v3_span(t, v.ptr, v.len, so.traceid, &sp[i]))
                return -ENOMEM;
            so.spans[i] = &sp[i];
            i++;
        }
        so.n_spans = i;
    }
    return mars_grpc_buf_add(b, &so.base);
}

/* ---- v6/7 (protocol v6) ---- */

/* "1.2.3" as a UniqueId. Returns false when it is not dotted numbers. */
static bool v6_id(struct tr *t, const char *s, V6UniqueId *id)
{
    int64_t *parts = mars_arena_alloc(&t->a, MAX_IDS * sizeof(*parts));
    size_t k = 0;
    *id = (V6UniqueId)V6_UNIQUE_ID__INIT;
    if (!parts || !s || !*s)
        return false;
    while (*s && k < MAX_IDS) {
        char *end;
        long long x = strtoll(s, &end, 10);
        if (end == s || (*end && *end != '.'))
            return false;
        parts[k++] = x;
        s = *end ? end + 1 : end;
    }
    id->idparts = parts;
    id->n_idparts = k;
    return *s == '\0';
}

static V6KeyStringValuePair **v6_kvs(struct tr *t, char **kv, size_t n)
{
    V6KeyStringValuePair *o = mars_arena_alloc(&t->a, (n + 1) * sizeof(*o));
    V6KeyStringValuePair **p = mars_arena_alloc(&t->a, (n + 1) * sizeof(*p));
    if (!o || !p)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        o[i] = (V6KeyStringValuePair)V6_KEY_STRING_VALUE_PAIR__INIT;
        o[i].key = kv[2 * i];
        o[i].value = kv[2 * i + 1];
        p[i] = &o[i];
    }
    return p;
}

/* "#name" is a name; anything else the number of a registered one. */
static void name_or_id(struct tr *t, const char *s, size_t n, const char *key, char **name,
                       int32_t *id)
{
    char *v = jstr(t, s, n, key);
    *name = "";
    *id = 0;
    if (v && v[0] == '#')
        *name = v + 1;
    else if (v)
        *id = i32(strtod(v, NULL));
}

static int v6_span(struct tr *t, const char *s, size_t n, V6SpanObjectV2 *sp)
{
    struct mars_value arr, v;
    char **kv;
    size_t nkv, pos = 0;
    *sp = (V6SpanObjectV2)V6_SPAN_OBJECT_V2__INIT;
    sp->spanid = i32(jnum(s, n, "spanId"));
    sp->parentspanid = i32(jnum(s, n, "parentSpanId"));
    sp->starttime = (int64_t)jnum(s, n, "startTime");
    sp->endtime = (int64_t)jnum(s, n, "endTime");
    sp->operationname = jstr(t, s, n, "operationName");
    sp->peer = jstr(t, s, n, "peer");
    sp->spantype = jenum(s, n, "spanType", span_types);
    sp->spanlayer = jenum(s, n, "spanLayer", span_layers);
    sp->componentid = i32(jnum(s, n, "componentId"));
    sp->component = jstr(t, s, n, "component");
    sp->iserror = jbool(s, n, "isError");
    if (!sp->operationname || !sp->peer || !sp->component || !pairs(t, s, n, "tags", &kv, &nkv) ||
        (nkv && !(sp->tags = v6_kvs(t, kv, nkv))))
        return -ENOMEM;
    sp->n_tags = nkv;
    if (jget(s, n, "refs", &arr) && (sp->n_refs = count_of(&arr))) {
        V6SegmentReference *r = mars_arena_alloc(&t->a, sp->n_refs * sizeof(*r));
        V6UniqueId *ids = mars_arena_alloc(&t->a, sp->n_refs * sizeof(*ids));
        sp->refs = mars_arena_alloc(&t->a, sp->n_refs * sizeof(*sp->refs));
        if (!r || !ids || !sp->refs)
            return -ENOMEM;
        size_t i = 0;
        while (i < sp->n_refs && mars_json_array_next(arr.ptr, arr.len, &pos, &v)) {
            const char *o = v.ptr;
            size_t on = v.len;
            r[i] = (V6SegmentReference)V6_SEGMENT_REFERENCE__INIT;
            r[i].reftype = jget(o, on, "refType", &v) ? jenum(o, on, "refType", ref_types)
                                                      : jenum(o, on, "type", ref_types);
            if (!v6_id(t, jstr(t, o, on, "parentTraceSegmentId"), &ids[i]))
                return -EINVAL;
            r[i].parenttracesegmentid = &ids[i];
            r[i].parentspanid = i32(jnum(o, on, "parentSpanId"));
            r[i].parentserviceinstanceid = i32(jnum(o, on, "parentApplicationInstanceId"));
            r[i].entryserviceinstanceid = i32(jnum(o, on, "entryApplicationInstanceId"));
            name_or_id(t, o, on, "networkAddress", &r[i].networkaddress, &r[i].networkaddressid);
            name_or_id(t, o, on, "entryServiceName", &r[i].entryendpoint, &r[i].entryendpointid);
            name_or_id(t, o, on, "parentServiceName", &r[i].parentendpoint, &r[i].parentendpointid);
            sp->refs[i] = &r[i];
            i++;
        }
        sp->n_refs = i;
    }
    if (jget(s, n, "logs", &arr) && (sp->n_logs = count_of(&arr))) {
        V6Log *l = mars_arena_alloc(&t->a, sp->n_logs * sizeof(*l));
        sp->logs = mars_arena_alloc(&t->a, sp->n_logs * sizeof(*sp->logs));
        if (!l || !sp->logs)
            return -ENOMEM;
        size_t i = 0;
        pos = 0;
        while (i < sp->n_logs && mars_json_array_next(arr.ptr, arr.len, &pos, &v)) {
            if (v.kind != MARS_FIELD_OBJECT)
                continue;
            l[i] = (V6Log)V6_LOG__INIT;
            l[i].time = (int64_t)jnum(v.ptr, v.len, "time");
            if (!pairs(t, v.ptr, v.len, "data", &kv, &nkv) ||
                (nkv && !(l[i].data = v6_kvs(t, kv, nkv))))
                return -ENOMEM;
            l[i].n_data = nkv;
            sp->logs[i] = &l[i];
            i++;
        }
        sp->n_logs = i;
    }
    return 0;
}

static int v6_segment(struct tr *t, const char *s, size_t n, struct mars_grpc_buf *b)
{
    struct mars_value seg, arr, v;
    if (!jget(s, n, "segment", &seg) || seg.kind != MARS_FIELD_OBJECT)
        return -EINVAL;
    V6SegmentObject so = V6_SEGMENT_OBJECT__INIT;
    V6UpstreamSegment up = V6_UPSTREAM_SEGMENT__INIT;
    V6UniqueId segid, gids[MAX_IDS], *gidp[MAX_IDS];
    if (!v6_id(t, jstr(t, seg.ptr, seg.len, "traceSegmentId"), &segid))
        return -EINVAL;
    so.tracesegmentid = &segid;
    so.serviceid = i32(jnum(s, n, "application_id"));
    so.serviceinstanceid = i32(jnum(s, n, "application_instance"));
    if (!so.serviceid)
        so.serviceid = t->own.service_id;
    if (!so.serviceinstanceid)
        so.serviceinstanceid = t->own.instance_id;
    so.issizelimited = jbool(seg.ptr, seg.len, "isSizeLimited");
    if (jget(seg.ptr, seg.len, "spans", &arr) && (so.n_spans = count_of(&arr))) {
        V6SpanObjectV2 *sp = mars_arena_alloc(&t->a, so.n_spans * sizeof(*sp));
        so.spans = mars_arena_alloc(&t->a, so.n_spans * sizeof(*so.spans));
        if (!sp || !so.spans)
            return -ENOMEM;
        size_t i = 0, pos = 0;
        while (i < so.n_spans && mars_json_array_next(arr.ptr, arr.len, &pos, &v)) {
            if (v.kind != MARS_FIELD_OBJECT)
                continue;
            int rc = v6_span(t, v.ptr, v.len, &sp[i]);
            if (rc)
                return rc;
            so.spans[i] = &sp[i];
            i++;
        }
        so.n_spans = i;
    }
    size_t pos = 0;
    if (jget(s, n, "globalTraceIds", &arr) && arr.kind == MARS_FIELD_ARRAY)
        while (up.n_globaltraceids < MAX_IDS && mars_json_array_next(arr.ptr, arr.len, &pos, &v)) {
            if (!v6_id(t, vtext(t, &v), &gids[up.n_globaltraceids]))
                return -EINVAL;
            gidp[up.n_globaltraceids] = &gids[up.n_globaltraceids];
            up.n_globaltraceids++;
        }
    up.globaltraceids = gidp;
    size_t len = protobuf_c_message_get_packed_size(&so.base);
    uint8_t *packed = mars_arena_alloc(&t->a, len + 1);
    if (!packed)
        return -ENOMEM;
    up.segment.data = packed;
    up.segment.len = protobuf_c_message_pack(&so.base, packed);
    return mars_grpc_buf_add(b, &up.base);
}

/* ---- entry point ---- */

int mars_skywalking_trace_encode(struct sw_sink *sw, const struct mars_sink_req *r,
                                 struct mars_grpc_buf *b, uint64_t *n, uint64_t *bad)
{
    struct tr t = {.sw = sw};
    int rc = 0;
    *n = *bad = 0;
    mars_arena_init(&t.a);
    pthread_mutex_lock(&sw->shared->lock);
    t.own = sw->shared->ids;
    pthread_mutex_unlock(&sw->shared->lock);
    for (uint32_t i = 0; rc == 0 && i < r->n; i++)
        for (uint32_t j = 0; rc == 0 && j < r->batches[i]->n; j++) {
            const struct mars_event *ev = &r->batches[i]->ev[j];
            if (ev->kind != MARS_EVENT_LOG || !(ev->flags & MARS_EVF_TRACE))
                continue;
            const char *s = ev->msg.ptr;
            size_t len = ev->msg.len;
            if (mars_json_validate(s, len, 64, NULL) != MARS_JSON_OK) {
                (*bad)++;
                continue;
            }
            rc =
                sw->conf->protocol == SW_V6 ? v6_segment(&t, s, len, b) : v3_segment(&t, s, len, b);
            if (rc == -EINVAL) {
                (*bad)++;
                rc = 0;
            } else if (rc == 0) {
                (*n)++;
            }
        }
    mars_arena_fini(&t.a);
    return rc;
}
