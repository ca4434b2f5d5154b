/*
 * ipt_manage.c - which backend gets which managed rule, and the one call that reconciles
 * the kernel with a desired set (mars_iptables_apply).
 *
 * nft applies to every family; legacy only where the family's legacy tables exist (opening
 * libiptc elsewhere would create them). With backend auto a family that has legacy tables
 * gets its rules there (where the node's admin and kube-proxy look), every other family on
 * nft; a rule of both families is split. What a backend does not get is brought to empty
 * there, so moving a family between backends never leaves a rule twice.
 *
 * Thread: the source's dump thread.
 */
#include <errno.h>
#include <string.h>

#include "sources/iptables/ipt_internal.h"
#include "sources/iptables/ipt_rules.h"

static void merge(struct ipt_apply_res *into, const struct ipt_apply_res *r)
{
    into->added += r->added;
    into->removed += r->removed;
    into->kept += r->kept;
    if (r->err && !into->err) {
        into->err = r->err;
        memcpy(into->why, r->why, sizeof(into->why));
    }
}

/* The rules nft gets: those of families without legacy (both: as they are). */
static int nft_share(const struct ipt_ruleset *want, bool legacy4, bool legacy6,
                     struct ipt_ruleset *out)
{
    int rc = 0;
    for (size_t i = 0; i < want->n && !rc; i++) {
        struct ipt_krule k = want->v[i];
        if (k.family == 0 && !legacy4 && !legacy6) {
            rc = mars_iptables_ruleset_add(out, &k);
            continue;
        }
        for (int f = 4; f <= 6 && !rc; f += 2) {
            if ((k.family && k.family != f) || (f == 4 ? legacy4 : legacy6))
                continue;
            k.family = (uint8_t)f;
            rc = mars_iptables_ruleset_add(out, &k);
        }
    }
    return rc;
}

int mars_iptables_apply(enum ipt_backend backend, const struct ipt_ruleset *want,
                        struct ipt_apply_res *res)
{
    bool legacy[2] = {backend != IPT_BACKEND_NFT && mars_iptables_legacy_present(false),
                      backend != IPT_BACKEND_NFT && mars_iptables_legacy_present(true)};
    if (backend == IPT_BACKEND_LEGACY && !legacy[0] && !legacy[1]) {
        if (want->n == 0)
            return 0;
        return mars_iptables_apply_fail(
            res, -ENOENT,
            "managed rules: backend legacy, but no legacy iptables tables exist here "
            "(/proc/net/ip_tables_names and ip6_tables_names are empty); mars does not create "
            "them: use backend nft or auto");
    }
    if (backend != IPT_BACKEND_LEGACY) {
        struct ipt_ruleset share = {0};
        struct ipt_apply_res r = {0};
        if (nft_share(want, legacy[0], legacy[1], &share))
            mars_iptables_apply_fail(&r, -ENOMEM, "managed rules: out of memory");
        else
            mars_iptables_nft_apply(&share, &r);
        mars_iptables_ruleset_fini(&share);
        merge(res, &r);
    }
    for (int v6 = 0; v6 <= 1; v6++) {
        if (!legacy[v6])
            continue;
        struct ipt_apply_res r = {0};
        mars_iptables_legacy_apply(want, v6, &r);
        merge(res, &r);
    }
    return res->err;
}
