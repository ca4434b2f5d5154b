/*
 * dbuf_orphans.c - disk buffers whose sink is gone: at start, every directory under
 * data_dir/buffers/ that no configured sink with a disk buffer owns is reported with its
 * size and kept, or removed with orphan_buffers: delete.
 *
 * Thread: the control thread, at start, before the workers (nothing else touches buffers).
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "engine/dbuf.h"

/* Bytes under dir (files one and two levels down: lanes and their segments); with rm the
 * files and directories are removed too. */
static uint64_t tree_size(const char *dir, bool rm, int depth)
{
    uint64_t total = 0;
    DIR *dp = opendir(dir);
    if (!dp)
        return 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
            continue;
        struct stat st;
        if (lstat(path, &st))
            continue;
        if (S_ISDIR(st.st_mode) && depth < 2) {
            total += tree_size(path, rm, depth + 1);
            if (rm)
                rmdir(path);
        } else if (S_ISREG(st.st_mode)) {
            total += (uint64_t)st.st_size;
            if (rm)
                unlink(path);
        }
    }
    closedir(dp);
    return total;
}

void mars_dbuf_orphans(const struct mars_config *cfg)
{
    char root[PATH_MAX];
    if (snprintf(root, sizeof(root), "%s/buffers", cfg->top.data_dir) >= (int)sizeof(root))
        return;
    DIR *dp = opendir(root);
    if (!dp)
        return;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.')
            continue;
        bool used = false;
        for (uint32_t i = 0; i < cfg->n && !used; i++)
            used = cfg->nodes[i].kind == MARS_KIND_SINK &&
                   cfg->nodes[i].common.buffer.type == MARS_BUFFER_DISK &&
                   strcmp(cfg->nodes[i].id, de->d_name) == 0;
        if (used)
            continue;
        char dir[PATH_MAX];
        if (snprintf(dir, sizeof(dir), "%s/%s", root, de->d_name) >= (int)sizeof(dir))
            continue;
        bool rm = cfg->top.orphan_buffers == MARS_ORPHANS_DELETE;
        uint64_t size = tree_size(dir, rm, 0);
        if (rm && rmdir(dir) == 0) {
            mars_warn("-",
                      "disk buffer %s (%llu bytes) belongs to no configured sink with a disk "
                      "buffer: deleted (orphan_buffers: delete)",
                      dir, (unsigned long long)size);
        } else {
            mars_warn("-",
                      "disk buffer %s (%llu bytes) belongs to no configured sink with a disk "
                      "buffer: kept (its events are not delivered; orphan_buffers: delete "
                      "removes it)",
                      dir, (unsigned long long)size);
        }
    }
    closedir(dp);
}
