/*
 * cfg_lookup.c - reading a loaded configuration tree (cfg.h): keys of a mapping, the node a
 * diagnostic points at (the value written, or the enclosing mapping for a default), and
 * the names of node kinds for messages. Mappings are small (a component's options), so a
 * linear scan in document order is all a lookup needs.
 *
 * Thread: any; the tree is read-only once loaded.
 */
#include "core/cfg.h"

#include <stddef.h>
#include <string.h>

static ptrdiff_t find_key(const struct mars_cfg_node *map, const char *key)
{
    size_t klen = strlen(key);

    if (!map || map->kind != MARS_CFG_MAP)
        return -1;
    for (size_t i = 0; i < map->n; i++) {
        const struct mars_cfg_node *k = map->keys[i];
        if (k->len == klen && memcmp(k->str, key, klen) == 0)
            return (ptrdiff_t)i;
    }
    return -1;
}

const struct mars_cfg_node *mars_cfg_get(const struct mars_cfg_node *map, const char *key)
{
    ptrdiff_t i = find_key(map, key);

    return i < 0 ? NULL : map->vals[i];
}

const struct mars_cfg_node *mars_cfg_get_key(const struct mars_cfg_node *map, const char *key)
{
    ptrdiff_t i = find_key(map, key);

    return i < 0 ? NULL : map->keys[i];
}

const struct mars_cfg_node *mars_cfg_at(const struct mars_cfg_node *map, const char *key,
                                        const char *sub)
{
    const struct mars_cfg_node *v = mars_cfg_get(map, key);

    if (!v)
        return map;
    if (!sub)
        return v;
    const struct mars_cfg_node *s = mars_cfg_get(v, sub);
    if (s && s->kind == MARS_CFG_SCALAR)
        return s;
    const struct mars_cfg_node *k = mars_cfg_get_key(v, sub);
    return k ? k : v;
}

const struct mars_cfg_node *mars_cfg_item_at(const struct mars_cfg_node *map, const char *key,
                                             size_t i)
{
    const struct mars_cfg_node *l = mars_cfg_get(map, key);

    if (l && l->kind == MARS_CFG_SEQ && i < l->n)
        return l->vals[i];
    return mars_cfg_at(map, key, NULL);
}

const struct mars_cfg_node *mars_cfg_key_at(const struct mars_cfg_node *map, const char *key,
                                            const char *sub)
{
    const struct mars_cfg_node *k = mars_cfg_get_key(mars_cfg_get(map, key), sub);

    return k ? k : mars_cfg_at(map, key, NULL);
}

const char *mars_cfg_kind_name(enum mars_cfg_kind k)
{
    switch (k) {
    case MARS_CFG_NULL:
        return "null";
    case MARS_CFG_SCALAR:
        return "scalar";
    case MARS_CFG_MAP:
        return "mapping";
    case MARS_CFG_SEQ:
        return "list";
    }
    return "?";
}
