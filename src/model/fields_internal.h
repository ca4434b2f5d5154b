/*
 * fields_internal.h - helpers shared by fields.c (lookup and edits) and fields_build.c
 * (builder and merge). Indices, never pointers, survive mars_fields_writable(): it may move
 * the array.
 */
#ifndef MARS_FIELDS_INTERNAL_H
#define MARS_FIELDS_INTERNAL_H

#include "model/fields.h"

void mars_fields_init_entry(struct mars_field *e, const char *key, uint32_t key_len,
                            enum mars_field_kind kind, const char *value, uint32_t len,
                            unsigned flags);
/* ev's fields, editable in b's arena with room for `extra` more entries (copied on write
 * when another arena owns them, or when full). NULL with *err = -ENOMEM or -E2BIG. */
struct mars_fields *mars_fields_writable(struct mars_batch *b, struct mars_event *ev,
                                         uint32_t extra, int *err);
/* Appends a member to object obj (room must have been made). Returns its index. */
uint32_t mars_fields_append(struct mars_fields *f, uint32_t obj, const char *key, uint32_t key_len,
                            enum mars_field_kind kind, const char *value, uint32_t len,
                            unsigned flags);
/* Replaces an entry's value (an object's old members are dropped). */
void mars_fields_overwrite(struct mars_field *e, enum mars_field_kind kind, const char *value,
                           uint32_t len, unsigned flags);
/* The object holding p's last segment (created on the way when `create`), or NIL with *err
 * set. */
uint32_t mars_fields_parent_of(struct mars_fields *f, const struct mars_path *p, bool create,
                               int *err);
/* Takes member m out of object obj's chain. */
void mars_fields_unlink(struct mars_fields *f, uint32_t obj, uint32_t m);

#endif
