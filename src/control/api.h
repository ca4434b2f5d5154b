/*
 * api.h - the admin HTTP API (DESIGN §7) of one running engine: /healthz, /readyz,
 * /metrics, /api/v1/components, POST /api/v1/reload and /health/<name>.
 *
 * It sits above the engine: main.c starts it from the engine's on_running hook and stops
 * it from on_stopping (engine.h), and it reads the engine only through engine.h and the
 * reader half of observe.h.
 */
#ifndef MARS_API_H
#define MARS_API_H

struct mars_api;
struct mars_engine;

/* Starts the API for e when its config enables it (api.enabled). `address` overrides
 * api.address when non-NULL and non-empty (main.c passes MARS_API_ADDRESS). Returns an
 * owned API (stop with mars_api_stop), or NULL when disabled or when the server could not
 * start (logged; main.c then stops mars from starting). Control thread. */
struct mars_api *mars_api_start(struct mars_engine *e, const char *address);
/* The bound address ("127.0.0.1:PORT" or a socket path). Thread-safe while it runs. */
const char *mars_api_address(const struct mars_api *api);
/* Stops the server and frees api (NULL is fine). Control thread. */
void mars_api_stop(struct mars_api *api);

#endif
