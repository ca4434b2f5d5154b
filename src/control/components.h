/*
 * components.h - the built-in component types (components.c lists them).
 */
#ifndef MARS_COMPONENTS_H
#define MARS_COMPONENTS_H

/* Adds every built-in type to the registry, in `mars describe` order. Call once before
 * loading a config (a second call adds nothing). Not thread-safe. */
void mars_components_register(void);

#endif
