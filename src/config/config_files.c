/*
 * config_files.c - which files a configuration is read from, and reading them into one
 * tree: every -c path in order, a directory standing for the *.yaml and *.yml files in it
 * (not its subdirectories, not hidden names such as a ConfigMap's ..data) in lexical byte
 * order. The trees are merged by core/cfg_merge.c, so a pipeline can be split over files
 * and a component id defined twice is an error naming both places.
 *
 * Thread: the caller's (control thread, or a reload on the API thread).
 */
#include "config/config.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/grow.h"

static const char *const component_sections[] = {"sources", "transforms", "sinks", NULL};

struct names {
    char **v;
    size_t n, cap;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool yaml_name(const char *name)
{
    size_t len = strlen(name);
    if (name[0] == '.')
        return false;
    return (len > 5 && strcmp(name + len - 5, ".yaml") == 0) ||
           (len > 4 && strcmp(name + len - 4, ".yml") == 0);
}

/* Appends the YAML files of directory dir (sorted) to out. */
static int list_dir(const char *dir, struct names *out, struct mars_diag *diag)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t first = out->n;
    size_t dlen = strlen(dir);
    bool slash = dlen && dir[dlen - 1] == '/';
    struct stat st;

    if (!d) {
        mars_diag_add(diag, dir, 0, 0, "cannot open: %s", strerror(errno));
        return -EINVAL;
    }
    while ((de = readdir(d)) != NULL) {
        char *path;
        if (!yaml_name(de->d_name))
            continue;
        if (asprintf(&path, "%s%s%s", dir, slash ? "" : "/", de->d_name) < 0)
            path = NULL;
        if (path && (stat(path, &st) != 0 || !S_ISREG(st.st_mode))) {
            free(path); /* a subdirectory or a dangling link: not a config file */
            continue;
        }
        if (!path || mars_grow(&out->v, &out->cap, out->n + 1, sizeof(*out->v))) {
            free(path);
            closedir(d);
            return -ENOMEM;
        }
        out->v[out->n++] = path;
    }
    closedir(d);
    if (out->n == first) {
        mars_diag_add(diag, dir, 0, 0, "no *.yaml or *.yml files in this directory");
        return -EINVAL;
    }
    qsort(out->v + first, out->n - first, sizeof(*out->v), cmp_str);
    return 0;
}

int mars_config_files(const char *const *paths, size_t n, char ***files, size_t *nfiles,
                      struct mars_diag *diag)
{
    struct names out = {0};
    struct stat st;
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            int r = list_dir(paths[i], &out, diag);
            if (r == -ENOMEM) {
                rc = r;
                break;
            }
            rc = r ? r : rc;
            continue;
        }
        char *p = strdup(paths[i]); /* a missing file is reported when it is read */
        if (!p || mars_grow(&out.v, &out.cap, out.n + 1, sizeof(*out.v))) {
            free(p);
            rc = -ENOMEM;
            break;
        }
        out.v[out.n++] = p;
    }
    if (rc) {
        mars_config_files_free(out.v, out.n);
        return rc;
    }
    *files = out.v;
    *nfiles = out.n;
    return 0;
}

void mars_config_files_free(char **files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
}

struct mars_cfg_doc *mars_config_read(const char *const *paths, size_t n, struct mars_diag *diag)
{
    char **files = NULL;
    size_t nfiles = 0;
    if (mars_config_files(paths, n, &files, &nfiles, diag))
        return NULL;
    struct mars_cfg_doc **docs = calloc(nfiles, sizeof(*docs));
    bool ok = docs != NULL;
    for (size_t i = 0; docs && i < nfiles; i++) /* every file, so every problem is reported */
        ok = (docs[i] = mars_cfg_load_file(files[i], diag)) != NULL && ok;
    struct mars_cfg_doc *doc = NULL;
    if (ok)
        doc = mars_cfg_merge(paths[0], docs, nfiles, component_sections, diag);
    else
        for (size_t i = 0; docs && i < nfiles; i++)
            mars_cfg_doc_destroy(docs[i]);
    if (!docs)
        mars_diag_add(diag, paths[0], 0, 0, "out of memory while loading the configuration");
    free(docs);
    mars_config_files_free(files, nfiles);
    return doc;
}
