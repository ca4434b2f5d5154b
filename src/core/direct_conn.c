/*
 * direct_conn.c - what mars's own HTTP/1.1 (core/http_direct.c) and h2c
 * (core/http2_direct.c) do alike with their connections: the client's doubly linked lists
 * of live and closed ones, the one deadline timer each, and the graveyard.
 *
 * A closed connection is not freed where it is closed: core/conn may still have an op of
 * it in flight, and the close is often inside one of its own callbacks. It goes to the
 * graveyard, and the client's deferred work (the kick) frees it once core/conn is idle
 * and its timer is done.
 *
 * Thread: the client's loop.
 */
#include <stdlib.h>

#include "core/conn.h"
#include "core/http_client_internal.h"

void mars_direct_conn_unlink(struct mars_direct_conn **head, struct mars_direct_conn *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        *head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    d->prev = d->next = NULL;
}

void mars_direct_conn_push(struct mars_direct_conn **head, struct mars_direct_conn *d)
{
    d->prev = NULL;
    d->next = *head;
    if (*head)
        (*head)->prev = d;
    *head = d;
}

void mars_direct_conn_bury(struct mars_direct_conn *d, struct mars_direct_conn **live,
                           struct mars_direct_conn **graveyard)
{
    if (d->closed)
        return;
    d->closed = true;
    mars_direct_conn_unlink(live, d);
    mars_direct_conn_push(graveyard, d);
    mars_conn_close(d->c);
    if (d->timer_armed)
        mars_ev_cancel(d->h->loop, &d->timer);
    mars_http_kick(d->h);
}

void mars_direct_conn_timer_arm(struct mars_direct_conn *d, int64_t due, mars_ev_cb cb)
{
    struct mars_http *h = d->h;
    if (d->closed || h->shutting_down)
        return;
    if (d->timer_armed) {
        if (d->timer_armed_due > due)
            mars_ev_cancel(h->loop, &d->timer); /* cb arms it again for `due` */
        return;
    }
    int64_t wait = due - mars_ev_now(h->loop);
    mars_ev_prep_timer(&d->timer, wait > 0 ? wait : 0, cb, d);
    if (mars_ev_submit(h->loop, &d->timer) == 0) {
        d->timer_armed = true;
        d->timer_armed_due = due;
    }
}

void mars_direct_conn_reap(struct mars_direct_conn **live, struct mars_direct_conn **graveyard,
                           bool all, void (*free_fn)(struct mars_direct_conn *))
{
    struct mars_direct_conn *d = *graveyard;
    while (d) {
        struct mars_direct_conn *next = d->next;
        if (all || (!mars_conn_busy(d->c) && !d->timer_armed)) {
            mars_direct_conn_unlink(graveyard, d);
            free_fn(d);
        }
        d = next;
    }
    while (all && *live) {
        d = *live;
        mars_direct_conn_unlink(live, d);
        free_fn(d);
    }
}

void mars_direct_conn_fini(struct mars_direct_conn *d)
{
    mars_conn_destroy(d->c);
    free(d->host);
    free(d->port);
}
