/*
 * ipt_pods.h - `pods: true` of the iptables source: one accounting rule per direction and
 * pod IP of this node, following the engine's shared pod watch (sources/kubernetes/pods.h).
 *
 * Each pod IP gets two count rules in the forward hook of mars's table or chains: `in`
 * (destination the pod IP: what the node routes to the pod) and `out` (source the pod
 * IP). Their comment is "pod:<namespace>/<name>:in|out" (or "pod:<uid>:in|out" when that
 * would pass the kernel's 127 bytes), so a rule outlives neither its pod nor a change of
 * its IP, and a reload or restart finds the same rules (their counters run on).
 *
 * Thread: the source's worker.
 */
#ifndef MARS_IPT_PODS_H
#define MARS_IPT_PODS_H

#include <stdbool.h>
#include <stddef.h>

#include "sources/iptables/ipt_rules.h"
#include "sources/kubernetes/pods.h"
#include "component.h"

struct ipt_pods;

/* Receives the pod rules (owned) each time the pods' IPs change, on the worker; the first
 * call comes once the watch has listed the pods. */
typedef void (*ipt_pods_fn)(void *arg, struct ipt_ruleset *pod_rules);

/* Subscribes to the pod watch of api (starting it if this engine has none). NULL on
 * failure (logged). */
struct ipt_pods *mars_iptables_pods_start(struct mars_source *src,
                                          const struct mars_kubernetes_api_conf *api,
                                          ipt_pods_fn fn, void *arg);
void mars_iptables_pods_stop(struct ipt_pods *p);

/* For the counters of a pod rule: the namespace and name of the pod `comment` names
 * ("pod:..."), from the comment or, for the uid form, from the pods last seen. Returns
 * false for other comments. ns and pod get "" when the uid is not known. */
bool mars_iptables_pod_labels(const struct ipt_pods *p, const char *comment, char *ns,
                              size_t ns_len, char *pod, size_t pod_len);

#endif
