/*
 * apollo_config.h - mars's own configuration from an Apollo namespace:
 *
 *   mars -c 'apollo://APP_ID/NAMESPACE?config_service=URL[,URL...]'
 *        [&cluster=C][&secret_file=PATH][&cache_dir=DIR][&ip=IP]
 *
 * NAMESPACE is a yaml/yml namespace (mars.yaml) holding the pipeline YAML. At start it is
 * fetched (or, when no config service answers, read from the cache of its last good
 * release, as the `apollo` source does); then a thread long-polls it and runs every
 * published release through the engine's validated reload (mars_engine_reload with this
 * module as its loader): a release with problems is refused with its FILE:LINE:COL
 * messages ("file" being apollo://APP_ID/NAMESPACE), logged, shown by GET /api/v1/config and
 * counted in mars_config_reloads_total{result="rejected"}; the running pipeline is kept.
 *
 * Thread: create/load/start/destroy on main's thread; the watcher runs on its own thread
 * with its own loop; set_engine and the loader are thread-safe.
 */
#ifndef MARS_APOLLO_CONFIG_H
#define MARS_APOLLO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct mars_apollo_config;
struct mars_config;
struct mars_diag;
struct mars_engine;

/* True when path is an apollo:// configuration. */
bool mars_apollo_config_is(const char *path);

/* Parses the apollo:// URI, starts the watcher thread and waits for the first release
 * (fetched, or from the cache). Returns owned state (free with mars_apollo_config_destroy)
 * or NULL with the reason in why. */
struct mars_apollo_config *mars_apollo_config_start(const char *uri, char *why, size_t wlen);

/* Parses the current release into *out (problems in diag at apollo://...:LINE:COL).
 * Usable as mars_engine_opts.load_config (arg: the state). */
int mars_apollo_config_load(void *ac, struct mars_config **out, struct mars_diag *diag);

/* The engine that published releases reload (NULL between engines). */
void mars_apollo_config_set_engine(struct mars_apollo_config *ac, struct mars_engine *e);

/* Stops the watcher and frees the state. NULL is fine. */
void mars_apollo_config_destroy(struct mars_apollo_config *ac);

#endif
