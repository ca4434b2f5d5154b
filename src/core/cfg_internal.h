/*
 * cfg_internal.h - what cfg.c lends the other files of the configuration tree
 * (cfg_merge.c): an empty document and allocation in a document's arena.
 */
#ifndef MARS_CFG_INTERNAL_H
#define MARS_CFG_INTERNAL_H

#include <stddef.h>

#include "core/cfg.h"

/* An empty document named name (root NULL). Returns owned (mars_cfg_doc_destroy) or NULL. */
struct mars_cfg_doc *mars_cfg_doc_create(const char *name);
/* size bytes, aligned for any type, freed with the document; NULL when out of memory. */
void *mars_cfg_doc_alloc(struct mars_cfg_doc *doc, size_t size);

#endif
