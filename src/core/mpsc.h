/*
 * mpsc.h - unbounded lock-free multi-producer single-consumer queue of intrusive nodes
 * (Vyukov's algorithm with a stub node). It carries commands and stats between the control
 * thread and the workers: push never blocks, never allocates and never fails.
 *
 * Rules:
 * - mars_mpsc_push() may be called from any thread at any time.
 * - mars_mpsc_pop() and mars_mpsc_empty() only from the one consumer thread.
 * - Nodes are embedded in the caller's structs (recover the owner with MARS_CONTAINER_OF
 *   from core/ev.h). A node is owned by the queue from push until pop returns it; the queue
 *   never frees anything. A node is in at most one queue at a time.
 * - The queue holds its own stub node, so it must not be moved or copied after init.
 * - Items of one producer come out in the order that producer pushed them; there is no
 *   order between producers.
 *
 * pop() returns NULL when the queue is empty, and also, briefly, when a producer is in the
 * middle of a push (it has claimed its place but not yet linked it): the nodes behind that
 * point are invisible until the push finishes. The consumer treats NULL as "nothing more for
 * now" and relies on a wakeup sent after every push, as below. A consumer without wakeups
 * (a final drain at shutdown) loops while !mars_mpsc_empty(), yielding between attempts.
 *
 * Pairing with mars_ev_async (how workers take commands):
 *
 *     producer, any thread:
 *         mars_mpsc_push(&w->cmds, &cmd->node);
 *         mars_ev_async_send(&w->wake);              // after the push has returned
 *
 *     consumer, the async callback on the worker's loop:
 *         struct mars_mpsc_node *n;
 *         while ((n = mars_mpsc_pop(&w->cmds)) != NULL)
 *             run_cmd(MARS_CONTAINER_OF(n, struct cmd, node));
 *
 * Every push is followed by a send, and every send by a callback that starts after it, so a
 * node hidden behind an unfinished push is picked up by the callback that the slow producer's
 * own send causes. Sends coalesce, so a burst of pushes costs a few eventfd writes and one
 * or a few drains.
 */
#ifndef MARS_MPSC_H
#define MARS_MPSC_H

#include <stdatomic.h>
#include <stdbool.h>

struct mars_mpsc_node {
    _Atomic(struct mars_mpsc_node *) next;
};

struct mars_mpsc {
    _Atomic(struct mars_mpsc_node *) head; /* last node pushed; producers swap it */
    char pad[64 - sizeof(void *)];         /* keep producers' and consumer's lines apart */
    struct mars_mpsc_node *tail;           /* next node to pop; consumer only */
    struct mars_mpsc_node stub;
};

/* Makes `q` an empty queue. Not thread-safe: before any push or pop. */
void mars_mpsc_init(struct mars_mpsc *q);
/* Appends `n` (caller's storage; owned by the queue until popped). Any thread. */
void mars_mpsc_push(struct mars_mpsc *q, struct mars_mpsc_node *n);
/* Removes and returns the oldest visible node, or NULL (see above). Consumer thread only. */
struct mars_mpsc_node *mars_mpsc_pop(struct mars_mpsc *q);
/* True when every node pushed so far, including pushes still in progress, has been popped.
 * Consumer thread only. */
bool mars_mpsc_empty(struct mars_mpsc *q);

#endif
