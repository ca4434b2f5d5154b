/*
 * fields.h - the parsed fields of a log event, and paths that address them.
 *
 * A parser does not build a tree of heap nodes: it records offsets. An event's fields are
 * one array of `struct mars_field` in the batch arena. Entry 0 is the root object; every
 * OBJECT links its members through `first`/`last`/`next` indices, in the order they were
 * added. A member's key and value are slices: straight into the line (the chunk) when the
 * parser could, into the batch arena when a value was changed or decoded. So a JSON line
 * with twenty keys costs one scan and one array copy into the arena, nothing per value.
 *
 * Value by kind:
 *   STRING  value = the bytes; with MARS_FF_ESCAPED they are a JSON string body (between
 *           the quotes, escapes not yet decoded, already validated), decoded on demand
 *   NUMBER  value = a JSON number literal ("200", "-1.5e3")
 *   BOOL    value = "true" or "false";  NULL  value = "null"
 *   OBJECT  members are child entries (value unused)
 *   ARRAY   value = the array's raw JSON text (validated); elements are read lazily
 *
 * `message` and `timestamp` at the root are the event itself: `message` is ev->msg (unless
 * a root member named message exists, or MARS_EVF_NO_MESSAGE says it was removed) and
 * `timestamp` is ev->ts_ns rendered as RFC 3339 (unless a root member named timestamp
 * exists). Setting `message` to a string changes ev->msg.
 *
 * Sharing. A batch clone (mars_batch_exclusive, mars_batch_select) copies events by value,
 * so two batches may point at one field array. `owner` names the arena the array lives in:
 * a writer whose batch arena is not the owner copies the array into its own arena first
 * (copy on write), so writing never shows through to another branch of the graph.
 *
 * Paths: `message`, `http.status`, `tags[0]`, `kubernetes.labels."app.kubernetes.io/name"`,
 * an optional leading '.', segments are [A-Za-z_@$][A-Za-z0-9_@$-]* or "quoted" (with \"
 * and \\ escapes). The empty path is the root. Paths are compiled once, at config load.
 *
 * Thread: an event's fields belong to the worker that owns its batch.
 */
#ifndef MARS_FIELDS_H
#define MARS_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/batch.h"

enum mars_field_kind {
    MARS_FIELD_STRING,
    MARS_FIELD_NUMBER,
    MARS_FIELD_BOOL,
    MARS_FIELD_NULL,
    MARS_FIELD_OBJECT,
    MARS_FIELD_ARRAY,
};
const char *mars_field_kind_name(enum mars_field_kind k);

#define MARS_FIELD_NIL  UINT32_MAX
#define MARS_FIELDS_MAX 65536u /* entries per event: more is a parse error */

enum {
    MARS_FF_ESCAPED = 1u << 0, /* STRING value is a JSON string body with escapes */
    MARS_FF_RAW = 1u << 1,     /* OBJECT given as its raw JSON text in value (no members) */
};

struct mars_field {
    const char *key;
    const char *value;
    uint32_t key_len, value_len;
    uint32_t first, last; /* OBJECT: members, or MARS_FIELD_NIL */
    uint32_t next;        /* next member of the same object, or MARS_FIELD_NIL */
    uint8_t kind;         /* enum mars_field_kind */
    uint8_t flags;        /* MARS_FF_* */
};

struct mars_fields {
    struct mars_field *v; /* v[0] is the root object */
    uint32_t n, cap;
    const struct mars_arena *owner; /* the arena v lives in (see Sharing) */
};

/* ---- paths ---- */

struct mars_path_seg {
    const char *name; /* member name (points into the path's own text); NULL for an index */
    uint32_t len;
    uint32_t index; /* array index when name is NULL */
};

enum { MARS_PATH_MESSAGE = 1 }; /* mars_path.special */

struct mars_path {
    uint32_t n;       /* segments; 0 = the root */
    uint32_t special; /* MARS_PATH_MESSAGE for the root member `message` */
    char *text;       /* the path as written (NUL-terminated), for messages */
    struct mars_path_seg seg[];
};

/* Parses a whole path. Returns an owned path (free with mars_path_destroy) or NULL with the
 * byte offset of the problem in *err_at and a static reason in *why. */
struct mars_path *mars_path_compile(const char *s, size_t len, size_t *err_at, const char **why);
/* Parses the longest path at the start of s (for the condition language). Sets *used to
 * the bytes consumed. Same ownership and errors as mars_path_compile. */
struct mars_path *mars_path_compile_prefix(const char *s, size_t len, size_t *used, size_t *err_at,
                                           const char **why);
void mars_path_destroy(struct mars_path *p);
/* True when the path has an array index (such paths can be read but not written). */
bool mars_path_has_index(const struct mars_path *p);
/* True when p is exactly the root member `name`. */
bool mars_path_is(const struct mars_path *p, const char *name);

/* ---- reading ---- */

/* A value looked up on an event. Borrowed from the event (or from `buf` for a synthesized
 * timestamp): valid while the batch is and the event is not changed. */
struct mars_value {
    uint8_t kind;    /* enum mars_field_kind */
    uint8_t flags;   /* MARS_FF_ESCAPED, MARS_FF_RAW (an OBJECT as raw JSON text in ptr/len) */
    uint32_t idx;    /* field entry, or MARS_FIELD_NIL (message, timestamp, array element) */
    uint32_t parent; /* the object holding idx (when idx is an entry) */
    const char *ptr;
    uint32_t len;
    char buf[40];
};

/* Looks p up on ev. Returns true and fills *out when the value exists. */
bool mars_fields_get(const struct mars_event *ev, const struct mars_path *p,
                     struct mars_value *out);
/* The value's bytes with escapes decoded: v->ptr itself when nothing needs decoding, else
 * a decoded copy in `scratch` (grown with realloc as needed; owned by the caller, reused
 * across calls so steady state allocates nothing). NULL on -ENOMEM. */
const char *mars_value_text(const struct mars_value *v, char **scratch, size_t *scap,
                            uint32_t *len);
/* Same, decoding into the batch arena (for values that must live as long as the batch). */
const char *mars_value_text_arena(const struct mars_value *v, struct mars_arena *a, uint32_t *len);
/* Number of a NUMBER value, or of a STRING that is entirely a decimal number. */
bool mars_value_number(const struct mars_value *v, double *out);

/* ---- writing: b must be exclusive (mars_batch_exclusive) and ev one of its events ---- */

/* Sets the value at p (creating intermediate objects; an existing value of any kind is
 * replaced in place, keeping its position). `value` must live as long as the batch (the
 * line, the arena, or the config). New members borrow their key from p's segments, so p
 * must outlive the batch too: paths owned by a transform instance do, since a worker
 * releases every batch before it destroys its transforms. OBJECT creates an empty object.
 * Returns 0, -EINVAL for a path with an index or through a non-object, -E2BIG past
 * MARS_FIELDS_MAX, -ENOMEM. */
int mars_fields_set(struct mars_batch *b, struct mars_event *ev, const struct mars_path *p,
                    enum mars_field_kind kind, const char *value, uint32_t len, unsigned flags);
/* Like mars_fields_set for a value v just looked up at p on ev (no change since): writes
 * in place without walking the path again. */
int mars_fields_replace(struct mars_batch *b, struct mars_event *ev, const struct mars_path *p,
                        const struct mars_value *v, enum mars_field_kind kind, const char *value,
                        uint32_t len, unsigned flags);
/* Removes the value at p. Returns 0 or -ENOENT. */
int mars_fields_remove(struct mars_batch *b, struct mars_event *ev, const struct mars_path *p);
/* Moves (rename) or copies the value at `from` to `to`, objects with all their members.
 * Returns 0, -ENOENT when from does not exist, or as mars_fields_set. */
int mars_fields_move(struct mars_batch *b, struct mars_event *ev, const struct mars_path *from,
                     const struct mars_path *to, bool copy);
/* Replaces every '.' in the member keys of the object at p (the root for an empty path)
 * and of the objects inside it with '_' (app.kubernetes.io/name becomes
 * app_kubernetes_io/name), so a store that reads dots as nesting (Elasticsearch) does not
 * see `app` as both a value and an object. Returns the number of keys changed, -ENOENT,
 * -EINVAL when p is not an object, -ENOMEM. */
int mars_fields_dedot(struct mars_batch *b, struct mars_event *ev, const struct mars_path *p);
/* Sets ev->msg (keeping b->bytes right and clearing MARS_EVF_NL_FOLLOWS, since the bytes
 * after the new slice are no longer a newline). */
void mars_event_set_message(struct mars_batch *b, struct mars_event *ev, const char *ptr,
                            uint32_t len);

/* ---- building: what parsers fill, reused across events ---- */

/*
 * A builder holds one event's parsed members in a reusable heap array (owned by the
 * parser's state, so steady state allocates nothing), then mars_fields_merge() copies them
 * into the batch. Entry 0 is the root object. Keys and values must live as long as the
 * batch (slices of the line, or allocated in `arena`).
 */
struct mars_fbuild {
    struct mars_field *v;
    uint32_t n;
    size_t cap;
    struct mars_arena *arena; /* the batch arena, for decoded bytes */
};

void mars_fbuild_init(struct mars_fbuild *fb);
void mars_fbuild_fini(struct mars_fbuild *fb);
/* Starts a new event: only the root remains. */
void mars_fbuild_reset(struct mars_fbuild *fb, struct mars_arena *arena);
/* Adds member key = value under object `parent`. A key already present is replaced in place
 * (last wins) when `replace` is set; `bloom` (one per object, may be NULL) skips the search
 * for keys certainly absent. Returns the entry index, or MARS_FIELD_NIL on -ENOMEM or past
 * MARS_FIELDS_MAX. */
uint32_t mars_fbuild_put(struct mars_fbuild *fb, uint32_t parent, const char *key, uint32_t key_len,
                         enum mars_field_kind kind, const char *value, uint32_t value_len,
                         unsigned flags, bool replace, uint64_t *bloom);
/* The root member `key` of the builder, or MARS_FIELD_NIL. */
uint32_t mars_fbuild_find(const struct mars_fbuild *fb, uint32_t parent, const char *key,
                          uint32_t key_len);

/* Merges the builder's root members into ev at `target` (NULL or empty path: the root),
 * later keys replacing equal earlier ones. At the root, a `message` member that is a string
 * becomes ev->msg. Returns 0 or -errno as mars_fields_set. */
int mars_fields_merge(struct mars_batch *b, struct mars_event *ev, const struct mars_fbuild *fb,
                      const struct mars_path *target);

/* Root member named key of a field array (for encoders), or MARS_FIELD_NIL. */
uint32_t mars_fields_member(const struct mars_fields *f, uint32_t obj, const char *key,
                            uint32_t key_len);

#endif
