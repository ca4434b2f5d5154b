/*
 * registry.h - the table of component types config loading looks names up in. It names no
 * component itself: control/components.c adds the built-in ones, tests their own.
 */
#ifndef MARS_REGISTRY_H
#define MARS_REGISTRY_H

#include <stddef.h>

#include "config/desc.h"

/* The descriptor for (name, kind), or NULL. */
const struct mars_component_desc *mars_registry_find(const char *name, enum mars_kind kind);
size_t mars_registry_count(void);
const struct mars_component_desc *mars_registry_at(size_t i);
/* Adds a descriptor (borrowed for the life of the process). Not thread-safe: call before
 * loading config. Returns 0, -EEXIST or -ENOSPC. */
int mars_registry_add(const struct mars_component_desc *d);
const char *mars_kind_name(enum mars_kind k);   /* "source" */
const char *mars_kind_plural(enum mars_kind k); /* "sources" (config section) */

#endif
