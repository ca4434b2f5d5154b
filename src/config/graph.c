/*
 * graph.c - turns the `inputs:` lists into edges and checks the graph a pipeline needs:
 * every input names a source or transform (with a "did you mean" otherwise), no cycles,
 * every source and transform is read by something, there is at least one source and one
 * sink, and every edge carries an event type its reader accepts (log vs metric).
 *
 * Wildcards: an input with a glob character (`app_*`, fnmatch(3) syntax) reads every source
 * and transform whose id matches (for a transform with named outputs, every `id.port` that
 * matches), never the component itself; a pattern that matches nothing is an error. Plain
 * inputs are resolved first, so a pattern skips what is already read instead of calling it
 * a duplicate.
 *
 * Named outputs: a transform whose descriptor has `port` (route) is read as `id.port`;
 * each out edge records its port (0 for a plain output), so delivery sends a batch only to
 * the readers of the port it was emitted on. Reading such a transform without a port, or a
 * port it does not have, is an error with the list of its ports.
 *
 * The topological order (Kahn's algorithm) is kept: workers instantiate nodes in it so a
 * component's readers exist before it emits. Errors point at the `inputs` entry or the
 * component's key.
 *
 * Thread: the config loader's.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "config/config.h"
#include "config/registry.h"

static const char *data_name(unsigned t)
{
    if ((t & MARS_DATA_ANY) == MARS_DATA_ANY)
        return "log and metric";
    return (t & MARS_DATA_METRIC) ? "metric" : "log";
}

static int push_idx(uint32_t **arr, size_t *cap, uint32_t *n, uint32_t v)
{
    if (mars_grow(arr, cap, (size_t)*n + 1, sizeof(**arr)))
        return -ENOMEM;
    (*arr)[(*n)++] = v;
    return 0;
}

/* The mapping of node nd's options, for positions in messages (NULL if not a mapping). */
static const struct mars_cfg_node *node_map(const struct mars_config *c, const struct mars_node *nd)
{
    const struct mars_cfg_node *sec = mars_cfg_get(c->doc->root, mars_kind_plural(nd->kind));
    return mars_cfg_get(sec, nd->id);
}

/* Position of inputs[i] of node nd, for messages (NULL: use the node's). */
static const struct mars_cfg_node *input_pos(const struct mars_config *c,
                                             const struct mars_node *nd, size_t i)
{
    return mars_cfg_item_at(node_map(c, nd), "inputs", i);
}

static void unknown_input(const struct mars_config *c, const struct mars_node *nd, size_t i,
                          struct mars_diag *diag)
{
    const char *name = nd->common.inputs.v[i];
    const struct mars_cfg_node *pos = input_pos(c, nd, i);
    const char **ids = calloc(c->n + 1, sizeof(*ids));
    size_t n = 0;
    for (uint32_t j = 0; ids && j < c->n; j++)
        if (c->nodes[j].kind != MARS_KIND_SINK)
            ids[n++] = c->nodes[j].id;
    const char *hint = ids ? mars_suggest(name, ids, n) : NULL;
    if (hint)
        mars_diag_add(diag, pos ? pos->file : nd->file, pos ? pos->line : nd->line,
                      pos ? pos->col : nd->col,
                      "%s '%s': input '%s' is not a source or transform (did you mean '%s'?)",
                      mars_kind_name(nd->kind), nd->id, name, hint);
    else
        mars_diag_add(diag, pos ? pos->file : nd->file, pos ? pos->line : nd->line,
                      pos ? pos->col : nd->col, "%s '%s': input '%s' is not a source or transform",
                      mars_kind_name(nd->kind), nd->id, name);
    free(ids);
}

static bool has_ports(const struct mars_node *nd)
{
    return nd->kind == MARS_KIND_TRANSFORM && nd->desc && nd->desc->port;
}

/* "a, b, c" of a node's port names into buf. */
static const char *port_list(const struct mars_node *u, char *buf, size_t len)
{
    size_t o = 0;
    const char *name;
    buf[0] = '\0';
    for (size_t i = 0; (name = u->desc->port(u->conf, i)) && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s.%s", i ? ", " : "", u->id, name);
    return buf;
}

/* Finds the node (and port) an input names: an id, or id.port of a transform with named
 * outputs. Returns the node index, -1 when nothing matches (the caller reports it), or -2
 * after reporting a port problem. */
static int find_input(const struct mars_config *c, const struct mars_node *nd, size_t k,
                      uint32_t *port, struct mars_diag *diag)
{
    const char *name = nd->common.inputs.v[k];
    const struct mars_cfg_node *pos = input_pos(c, nd, k);
    const char *dot = strrchr(name, '.');
    char ports[512];
    int up = mars_config_find(c, name);
    *port = 0;
    if (up < 0 && dot) {
        char *id = strndup(name, (size_t)(dot - name));
        up = id ? mars_config_find(c, id) : -1;
        free(id);
        if (up < 0 || c->nodes[up].kind == MARS_KIND_SINK)
            return -1;
        const struct mars_node *u = &c->nodes[up];
        const char *pn;
        for (size_t i = 0; has_ports(u) && (pn = u->desc->port(u->conf, i)); i++)
            if (strcmp(pn, dot + 1) == 0) {
                *port = (uint32_t)i + 1;
                return up;
            }
        if (has_ports(u))
            mars_diag_add(diag, pos ? pos->file : nd->file, pos ? pos->line : nd->line,
                          pos ? pos->col : nd->col, "%s '%s': '%s' has no output '%s' (it has %s)",
                          mars_kind_name(nd->kind), nd->id, u->id, dot + 1,
                          port_list(u, ports, sizeof(ports)));
        else
            mars_diag_add(diag, pos ? pos->file : nd->file, pos ? pos->line : nd->line,
                          pos ? pos->col : nd->col, "%s '%s': '%s' has no named outputs",
                          mars_kind_name(nd->kind), nd->id, u->id);
        return -2;
    }
    if (up >= 0 && has_ports(&c->nodes[up])) {
        mars_diag_add(
            diag, pos ? pos->file : nd->file, pos ? pos->line : nd->line, pos ? pos->col : nd->col,
            "%s '%s': '%s' has named outputs; read one of them: %s", mars_kind_name(nd->kind),
            nd->id, name, port_list(&c->nodes[up], ports, sizeof(ports)));
        return -2;
    }
    return up;
}

static bool edge_exists(const struct mars_config *c, uint32_t up, uint32_t to, uint32_t port)
{
    const struct mars_node *u = &c->nodes[up];
    for (uint32_t j = 0; j < u->nout; j++)
        if (u->out[j] == to && u->out_port[j] == port)
            return true;
    return false;
}

/* Edge up -> to on port, made by inputs[item] of `to`. */
static int add_edge(struct mars_config *c, uint32_t up, uint32_t to, uint32_t port, size_t item)
{
    struct mars_node *u = &c->nodes[up], *t = &c->nodes[to];
    uint32_t n = u->nout;
    if (mars_grow(&u->out_port, &u->out_port_cap, (size_t)n + 1, sizeof(*u->out_port)) ||
        mars_grow(&t->in_item, &t->in_item_cap, (size_t)t->nin + 1, sizeof(*t->in_item)))
        return -ENOMEM;
    u->out_port[n] = port;
    t->in_item[t->nin] = (uint32_t)item;
    if (push_idx(&t->in, &t->in_cap, &t->nin, up) || push_idx(&u->out, &u->out_cap, &u->nout, to))
        return -ENOMEM;
    return 0;
}

static bool is_pattern(const char *name)
{
    return strpbrk(name, "*?[") != NULL;
}

/* Reads from upstream u (on port) into node `to` for the pattern inputs[item], unless an
 * earlier input already does. Returns 1, or -ENOMEM. */
static int add_matched(struct mars_config *c, uint32_t up, uint32_t to, uint32_t port, size_t item)
{
    if (edge_exists(c, up, to, port))
        return 1;
    return add_edge(c, up, to, port, item) ? -ENOMEM : 1;
}

/* Adds an edge from every output that the pattern inputs[item] of node i matches. Returns
 * how many matched, or -ENOMEM. */
static int expand_pattern(struct mars_config *c, uint32_t i, size_t item)
{
    const char *pat = c->nodes[i].common.inputs.v[item];
    char name[512];
    int matched = 0, rc;

    for (uint32_t j = 0; j < c->n; j++) {
        const struct mars_node *u = &c->nodes[j];
        const char *pn;
        if (j == i || u->kind == MARS_KIND_SINK)
            continue;
        if (!has_ports(u)) {
            if (fnmatch(pat, u->id, 0) != 0)
                continue;
            if ((rc = add_matched(c, j, i, 0, item)) < 0)
                return rc;
            matched++;
            continue;
        }
        for (size_t p = 0; (pn = u->desc->port(u->conf, p)); p++) {
            snprintf(name, sizeof(name), "%s.%s", u->id, pn);
            if (fnmatch(pat, name, 0) != 0)
                continue;
            if ((rc = add_matched(c, j, i, (uint32_t)p + 1, item)) < 0)
                return rc;
            matched++;
        }
    }
    return matched;
}

static int resolve_patterns(struct mars_config *c, uint32_t i, struct mars_diag *diag)
{
    struct mars_node *nd = &c->nodes[i];
    int rc = 0;
    for (size_t k = 0; k < nd->common.inputs.n; k++) {
        if (!is_pattern(nd->common.inputs.v[k]))
            continue;
        int n = expand_pattern(c, i, k);
        if (n < 0)
            return n;
        if (n == 0) {
            const struct mars_cfg_node *pos = input_pos(c, nd, k);
            mars_diag_add(diag, pos ? pos->file : nd->file, pos ? pos->line : nd->line,
                          pos ? pos->col : nd->col,
                          "%s '%s': input pattern '%s' matches no other source or transform",
                          mars_kind_name(nd->kind), nd->id, nd->common.inputs.v[k]);
            rc = -EINVAL;
        }
    }
    return rc;
}

static int resolve_inputs(struct mars_config *c, struct mars_diag *diag)
{
    int rc = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        struct mars_node *nd = &c->nodes[i];
        for (size_t k = 0; k < nd->common.inputs.n; k++) {
            uint32_t port;
            if (is_pattern(nd->common.inputs.v[k]))
                continue;
            int up = find_input(c, nd, k, &port, diag);
            if (up == -2) {
                rc = -EINVAL;
                continue;
            }
            if (up < 0 || c->nodes[up].kind == MARS_KIND_SINK) {
                unknown_input(c, nd, k, diag);
                rc = -EINVAL;
                continue;
            }
            bool dup = edge_exists(c, (uint32_t)up, i, port);
            if (dup) {
                const struct mars_cfg_node *pos = input_pos(c, nd, k);
                mars_diag_add(diag, pos->file, pos->line, pos->col,
                              "%s '%s': input '%s' is listed twice", mars_kind_name(nd->kind),
                              nd->id, nd->common.inputs.v[k]);
                rc = -EINVAL;
                continue;
            }
            if (add_edge(c, (uint32_t)up, i, port, k))
                return -ENOMEM;
        }
        int prc = resolve_patterns(c, i, diag);
        if (prc == -ENOMEM)
            return prc;
        if (prc)
            rc = prc;
    }
    return rc;
}

/* Kahn's algorithm; nodes left over are on or behind a cycle. */
static int topo_sort(struct mars_config *c, struct mars_diag *diag)
{
    uint32_t *indeg = calloc(c->n + 1, sizeof(*indeg));
    uint32_t head = 0, tail = 0;
    c->topo = calloc(c->n + 1, sizeof(*c->topo));
    if (!indeg || !c->topo) {
        free(indeg);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < c->n; i++)
        indeg[i] = c->nodes[i].nin;
    for (uint32_t i = 0; i < c->n; i++)
        if (indeg[i] == 0)
            c->topo[tail++] = i;
    while (head < tail) {
        const struct mars_node *nd = &c->nodes[c->topo[head++]];
        for (uint32_t k = 0; k < nd->nout; k++)
            if (--indeg[nd->out[k]] == 0)
                c->topo[tail++] = nd->out[k];
    }
    int rc = 0;
    if (tail < c->n) {
        for (uint32_t i = 0; i < c->n; i++) {
            if (indeg[i] == 0)
                continue;
            const struct mars_node *nd = &c->nodes[i];
            mars_diag_add(diag, nd->file, nd->line, nd->col,
                          "%s '%s' is part of a cycle: its inputs lead back to itself",
                          mars_kind_name(nd->kind), nd->id);
        }
        rc = -EINVAL;
    }
    free(indeg);
    return rc;
}

/* In topological order, so every input's type is known before its readers'. */
static int check_types(struct mars_config *c, struct mars_diag *diag)
{
    int rc = 0;
    for (uint32_t t = 0; t < c->n; t++) {
        struct mars_node *nd = &c->nodes[c->topo[t]];
        unsigned in = 0;
        if (!nd->desc) { /* its type is unknown (reported): assume anything, to add no noise */
            nd->produces = MARS_DATA_ANY;
            continue;
        }
        for (uint32_t k = 0; k < nd->nin; k++) {
            const struct mars_node *up = &c->nodes[nd->in[k]];
            in |= up->produces;
            if (nd->kind != MARS_KIND_SOURCE && (up->produces & nd->desc->accepts) == 0) {
                const struct mars_cfg_node *pos = input_pos(c, nd, nd->in_item[k]);
                mars_diag_add(diag, pos->file, pos->line, pos->col,
                              "%s '%s' (%s) takes %s events, but input '%s' produces %s events",
                              mars_kind_name(nd->kind), nd->id, nd->desc->name,
                              data_name(nd->desc->accepts), up->id, data_name(up->produces));
                rc = -EINVAL;
            }
        }
        if (nd->kind == MARS_KIND_SOURCE)
            nd->produces = nd->desc->produces & MARS_DATA_ANY;
        else if (nd->kind == MARS_KIND_TRANSFORM)
            nd->produces = (nd->desc->produces & MARS_DATA_SAME) ? (in & nd->desc->accepts)
                                                                 : nd->desc->produces;
    }
    return rc;
}

/* Skipped when a transform or sink could not be loaded (c->partial): a component that looks
 * unread may be what the broken one's inputs named, and saying so would only add noise. (A
 * misspelt input still reports the component it left unread.) */
static int check_reachability(const struct mars_config *c, struct mars_diag *diag)
{
    int rc = 0;
    uint32_t nsrc = 0, nsink = 0;
    if (c->partial)
        return 0;
    for (uint32_t i = 0; i < c->n; i++) {
        const struct mars_node *nd = &c->nodes[i];
        nsrc += nd->kind == MARS_KIND_SOURCE;
        nsink += nd->kind == MARS_KIND_SINK;
        if (nd->kind != MARS_KIND_SINK && nd->nout == 0) {
            mars_diag_add(diag, nd->file, nd->line, nd->col,
                          "%s '%s' is not read by any transform or sink (add it to some "
                          "component's inputs, or remove it)",
                          mars_kind_name(nd->kind), nd->id);
            rc = -EINVAL;
        }
    }
    if (nsrc == 0 || nsink == 0) {
        mars_diag_add(diag, c->doc->file, 1, 1, "the configuration has no %s",
                      nsrc == 0 ? "sources" : "sinks");
        rc = -EINVAL;
    }
    return rc;
}

/* dead_letter: another sink, taking logs, that has no dead_letter of its own (so routing
 * never loops). */
static int resolve_dead_letters(struct mars_config *c, struct mars_diag *diag)
{
    int rc = 0;
    for (uint32_t i = 0; i < c->n; i++)
        c->nodes[i].dead_letter = UINT32_MAX;
    for (uint32_t i = 0; i < c->n; i++) {
        struct mars_node *nd = &c->nodes[i];
        const char *want = nd->kind == MARS_KIND_SINK ? nd->common.dead_letter : NULL;
        if (!want)
            continue;
        const struct mars_cfg_node *pos = mars_cfg_at(node_map(c, nd), "dead_letter", NULL);
        const char *file = pos ? pos->file : nd->file;
        int line = pos ? pos->line : nd->line, col = pos ? pos->col : nd->col;
        uint32_t t = 0;
        while (t < c->n && strcmp(c->nodes[t].id, want) != 0)
            t++;
        const char *why = NULL;
        if (t == c->n || c->nodes[t].kind != MARS_KIND_SINK)
            why = "is not a sink";
        else if (t == i)
            why = "is this sink itself";
        else if (c->nodes[t].common.dead_letter)
            why = "has a dead_letter of its own (dead letters do not chain)";
        else if (c->nodes[t].desc && !(c->nodes[t].desc->accepts & MARS_DATA_LOG))
            why = "does not take log events";
        if (why) {
            mars_diag_add(diag, file, line, col, "sink '%s': dead_letter '%s' %s", nd->id, want,
                          why);
            rc = -EINVAL;
            continue;
        }
        nd->dead_letter = t;
    }
    return rc;
}

int mars_graph_build(struct mars_config *c, struct mars_diag *diag)
{
    /* each check runs even when an earlier one failed, so one run reports every problem;
     * only the type check needs a complete order */
    int rc = resolve_inputs(c, diag);
    if (rc == -ENOMEM)
        return rc;
    int rc2 = resolve_dead_letters(c, diag);
    int rc3 = check_reachability(c, diag);
    int rc4 = topo_sort(c, diag);
    if (rc4 == -ENOMEM)
        return rc4;
    int rc5 = rc4 ? 0 : check_types(c, diag);
    return rc || rc2 || rc3 || rc4 || rc5 ? -EINVAL : 0;
}
