/*
 * config_watch.h - `mars --watch-config`: the configuration files are watched with inotify
 * and a change goes through the engine's validated reload, as SIGHUP does.
 *
 * What is watched is the directory of each -c file (and each -c directory itself), not the
 * file: editors replace files by rename, and a Kubernetes ConfigMap update writes a new
 * hidden directory and swaps the `..data` symlink the visible names point through, so the
 * file itself never changes. Any event there starts a quiet period (debounce); when it ends,
 * the files -c stands for are read and hashed, and only a change of names or content asks
 * the engine for a reload. A reload with problems keeps the running pipeline, is logged
 * with every FILE:LINE:COL, and counts in mars_config_reloads_total{result="rejected"}; the
 * same content is not tried again until it changes.
 *
 * Thread: start/set_engine/destroy on main's thread (set_engine from the engine hooks);
 * the watcher runs on a thread of its own.
 */
#ifndef MARS_CONFIG_WATCH_H
#define MARS_CONFIG_WATCH_H

#include <stddef.h>

struct mars_config_watch;
struct mars_engine;

/* Starts watching paths[0..n) (borrowed: they must outlive the watch). Returns owned (stop
 * with mars_config_watch_destroy) or NULL with the reason in why. */
struct mars_config_watch *mars_config_watch_start(const char *const *paths, size_t n, char *why,
                                                  size_t len);
/* The engine a change reloads; NULL between engines (a change then waits for the next). */
void mars_config_watch_set_engine(struct mars_config_watch *w, struct mars_engine *e);
void mars_config_watch_destroy(struct mars_config_watch *w);

#endif
