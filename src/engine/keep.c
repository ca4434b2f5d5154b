/*
 * keep.c - the hand-over store: objects a component leaves behind when its engine stops
 * for a reload, for the next engine's instance of the same component to take over
 * (instance.h: mars_keep_put / mars_keep_take).
 *
 * Why. A reload rebuilds every component (docs/architecture.md, Reload), but some own
 * something outside mars that must not blink: the eureka sink's registrations. The old
 * instance puts what the new one needs (which instances are registered, with which
 * lastDirtyTimestamp) under a key of its choosing; the new instance takes it in init.
 *
 * Life: process-wide, a short list under a mutex (a few entries, touched at reloads only).
 * What nobody took once the next engine's workers have started (the component is gone
 * from the configuration, or was renamed) is destroyed then (mars_keep_drop_all from the
 * engine), and so is whatever is left when mars exits (main.c): destroy() is where the
 * owner cleans up outside mars (the eureka sink deregisters).
 *
 * Thread: any; destroy callbacks run on the thread that drops the entry, without the lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/instance.h"

struct keep_entry {
    char *key;
    void *obj;
    void (*destroy)(void *obj);
    struct keep_entry *next;
};

static pthread_mutex_t keep_lock = PTHREAD_MUTEX_INITIALIZER;
static struct keep_entry *keep_list;

static struct keep_entry *unlink_key(const char *key)
{
    for (struct keep_entry **pp = &keep_list; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->key, key) == 0) {
            struct keep_entry *k = *pp;
            *pp = k->next;
            return k;
        }
    return NULL;
}

int mars_keep_put(const char *key, void *obj, void (*destroy)(void *obj))
{
    struct keep_entry *k = calloc(1, sizeof(*k));
    if (!k || !(k->key = strdup(key))) {
        free(k);
        return -ENOMEM;
    }
    k->obj = obj;
    k->destroy = destroy;
    pthread_mutex_lock(&keep_lock);
    struct keep_entry *old = unlink_key(key);
    k->next = keep_list;
    keep_list = k;
    pthread_mutex_unlock(&keep_lock);
    if (old) {
        if (old->destroy)
            old->destroy(old->obj);
        free(old->key);
        free(old);
    }
    return 0;
}

void *mars_keep_take(const char *key)
{
    pthread_mutex_lock(&keep_lock);
    struct keep_entry *k = unlink_key(key);
    pthread_mutex_unlock(&keep_lock);
    if (!k)
        return NULL;
    void *obj = k->obj;
    free(k->key);
    free(k);
    return obj;
}

void mars_keep_drop_all(void)
{
    pthread_mutex_lock(&keep_lock);
    struct keep_entry *all = keep_list;
    keep_list = NULL;
    pthread_mutex_unlock(&keep_lock);
    while (all) {
        struct keep_entry *k = all;
        all = k->next;
        if (k->destroy)
            k->destroy(k->obj);
        free(k->key);
        free(k);
    }
}
