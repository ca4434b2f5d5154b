/*
 * ev_uring_probe.c - can io_uring run here? Ring setup with the best flags the kernel takes
 * (SINGLE_ISSUER|DEFER_TASKRUN, then COOP_TASKRUN, then plain; a refused flag is EINVAL and
 * the next tier is tried), and the probe `auto` runs before choosing the backend: a ring
 * must be created (ENOSYS: old kernel or filtered syscall; EPERM: seccomp, an LSM or
 * kernel.io_uring_disabled, told apart from /proc where possible), the kernel must have
 * NODROP and RW_CUR_POS, and every opcode mars submits must be supported.
 * Test hook uring_fail=enosys|eperm (core/testhook.h) simulates the two refusals.
 *
 * Thread: any (the probe uses a ring of its own and closes it).
 */
#include "core/ev_uring_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "core/testhook.h"

static const struct mars_ev_uring_tier tiers[] = {
    {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED |
         IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
     "SINGLE_ISSUER|DEFER_TASKRUN"},
    {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
     "COOP_TASKRUN"},
    {0, "plain"},
};

int mars_ev_uring_setup(struct io_uring *ring, unsigned entries,
                        const struct mars_ev_uring_tier **used)
{
    struct io_uring_params p;
    int rc = -EINVAL;

    for (size_t i = 0; i < sizeof(tiers) / sizeof(tiers[0]); i++) {
        memset(&p, 0, sizeof(p));
        p.flags = tiers[i].flags;
        p.cq_entries = entries * MARS_EV_URING_CQ_PER_SQ;
        rc = io_uring_queue_init_params(entries, ring, &p);
        if (rc == 0)
            *used = &tiers[i];
        if (rc != -EINVAL)
            break;
    }
    return rc;
}

/* Reads a small integer from a /proc file; -1 when absent or unreadable. */
static int read_proc_int(const char *path, const char *key)
{
    char line[256];
    FILE *f = fopen(path, "r");
    int v = -1;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (key == NULL) {
            v = atoi(line);
            break;
        }
        if (strncmp(line, key, strlen(key)) == 0) {
            v = atoi(line + strlen(key));
            break;
        }
    }
    fclose(f);
    return v;
}

/* Writes why io_uring_setup failed with `err`. */
static int explain_setup_error(int err, const char *simulated, char *why, size_t whylen)
{
    char tag[96] = "";
    int disabled, seccomp;

    if (simulated != NULL)
        snprintf(tag, sizeof(tag), " [simulated: test hook uring_fail=%s]", simulated);
    switch (err) {
    case -ENOSYS:
        seccomp = simulated ? -1 : read_proc_int("/proc/self/status", "Seccomp:");
        snprintf(why, whylen,
                 "io_uring_setup: ENOSYS: no io_uring in this kernel (before 5.1 "
                 "or CONFIG_IO_URING=n) or the syscall is filtered%s",
                 seccomp == 2 ? " (this process has a seccomp filter)" : tag);
        break;
    case -EPERM:
        disabled = simulated ? -1 : read_proc_int("/proc/sys/kernel/io_uring_disabled", NULL);
        seccomp = simulated ? -1 : read_proc_int("/proc/self/status", "Seccomp:");
        if (disabled == 2)
            snprintf(why, whylen,
                     "io_uring_setup: EPERM: disabled by sysctl "
                     "kernel.io_uring_disabled=2");
        else if (disabled == 1)
            snprintf(why, whylen,
                     "io_uring_setup: EPERM: sysctl kernel.io_uring_disabled=1 "
                     "allows it only to kernel.io_uring_group members");
        else if (seccomp == 2)
            snprintf(why, whylen,
                     "io_uring_setup: EPERM: denied by this process's seccomp "
                     "filter (container runtimes' default profiles deny it)");
        else
            snprintf(why, whylen,
                     "io_uring_setup: EPERM: denied by a seccomp filter, an "
                     "LSM policy or sysctl kernel.io_uring_disabled%s",
                     tag);
        break;
    case -ENOMEM:
        snprintf(why, whylen,
                 "io_uring_setup: ENOMEM: cannot allocate a ring (before Linux "
                 "5.12 rings count against RLIMIT_MEMLOCK)");
        break;
    default:
        snprintf(why, whylen, "io_uring_setup: %s", strerror(-err));
        break;
    }
    return err;
}

static const struct {
    int op;
    const char *name;
} ur_needed_ops[] = {
    {IORING_OP_READ, "READ"},
    {IORING_OP_WRITE, "WRITE"},
    {IORING_OP_WRITEV, "WRITEV"},
    {IORING_OP_SEND, "SEND"},
    {IORING_OP_SENDMSG, "SENDMSG"},
    {IORING_OP_RECV, "RECV"},
    {IORING_OP_ACCEPT, "ACCEPT"},
    {IORING_OP_CONNECT, "CONNECT"},
    {IORING_OP_TIMEOUT, "TIMEOUT"},
    {IORING_OP_POLL_ADD, "POLL_ADD"},
    {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
};

/* Checks features and opcodes of a live ring; writes what is missing. */
static int check_ring(struct io_uring *ring, char *why, size_t whylen)
{
    struct io_uring_probe *probe;
    char missing[160] = "";
    size_t used = 0;

    if (!(ring->features & IORING_FEAT_NODROP) || !(ring->features & IORING_FEAT_RW_CUR_POS)) {
        snprintf(why, whylen,
                 "kernel io_uring too old: lacks IORING_FEAT_NODROP or "
                 "IORING_FEAT_RW_CUR_POS (Linux 5.6 or later needed)");
        return -EOPNOTSUPP;
    }
    probe = io_uring_get_probe_ring(ring);
    if (probe == NULL) {
        snprintf(why, whylen,
                 "kernel io_uring too old: no opcode probe (Linux 5.6 or later "
                 "needed)");
        return -EOPNOTSUPP;
    }
    for (size_t i = 0; i < sizeof(ur_needed_ops) / sizeof(ur_needed_ops[0]); i++) {
        if (io_uring_opcode_supported(probe, ur_needed_ops[i].op))
            continue;
        used +=
            (size_t)snprintf(missing + used, sizeof(missing) - used, " %s", ur_needed_ops[i].name);
        if (used >= sizeof(missing))
            break;
    }
    io_uring_free_probe(probe);
    if (missing[0] != '\0') {
        snprintf(why, whylen, "kernel io_uring lacks opcodes:%s", missing);
        return -EOPNOTSUPP;
    }
    return 0;
}

/* IORING_ACCEPT_MULTISHOT came in 5.19 with IORING_OP_SOCKET and has no probe bit of its
 * own (an older kernel fails such an accept with EINVAL): SOCKET stands for it. */
unsigned mars_ev_uring_features(struct io_uring *ring)
{
    struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
    unsigned f = MARS_EV_URING_BUF_TABLE;

    if (probe == NULL)
        return f;
    if (io_uring_opcode_supported(probe, IORING_OP_SEND_ZC))
        f |= MARS_EV_URING_SEND_ZC | MARS_EV_URING_ZC_REPORT;
    if (io_uring_opcode_supported(probe, IORING_OP_SENDMSG_ZC))
        f |= MARS_EV_URING_SENDMSG_ZC;
    if (io_uring_opcode_supported(probe, IORING_OP_SOCKET))
        f |= MARS_EV_URING_MS_ACCEPT;
    io_uring_free_probe(probe);
    return f;
}

int mars_ev_uring_probe(char *why, size_t whylen)
{
    const char *fail = mars_test_hook("uring_fail");
    const struct mars_ev_uring_tier *tier = NULL;
    struct io_uring ring;
    struct utsname un;
    int rc;

    if (fail != NULL && strcmp(fail, "enosys") == 0)
        return explain_setup_error(-ENOSYS, fail, why, whylen);
    if (fail != NULL && strcmp(fail, "eperm") == 0)
        return explain_setup_error(-EPERM, fail, why, whylen);
    rc = mars_ev_uring_setup(&ring, 4, &tier);
    if (rc < 0)
        return explain_setup_error(rc, NULL, why, whylen);
    rc = check_ring(&ring, why, whylen);
    io_uring_queue_exit(&ring);
    if (rc < 0)
        return rc;
    if (uname(&un) != 0)
        snprintf(un.release, sizeof(un.release), "?");
    snprintf(why, whylen, "Linux %s, %s ring", un.release, tier->name);
    return 0;
}
