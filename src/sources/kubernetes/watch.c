/*
 * watch.c - the list+watch of pods and namespaces (placeholder until the HTTP client).
 *
 * Thread: the caller's.
 */
#include <stdlib.h>

#include "core/log.h"
#include "k8s_internal.h"

struct k8s_watch *k8s_watch_start(struct k8s_meta *m, const struct k8s_conf *conf,
                                  const char *id)
{
    mars_error(id, "metadata: not available yet; set metadata: false");
    return NULL;
}

void k8s_watch_stop(struct k8s_watch *w)
{
}
