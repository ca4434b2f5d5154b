/*
 * top.h - `mars top`: a terminal live view of a running mars, read over its admin API.
 */
#ifndef MARS_TOP_H
#define MARS_TOP_H

/* Runs the view until the user presses q (or the API goes away for good when stdout is not
 * a terminal). `address` is the admin API's HOST:PORT or a unix socket path; NULL means
 * $MARS_API_ADDRESS, else 127.0.0.1:8686. Returns 0, or a negative errno when it could not
 * start (printed on stderr). Main thread; blocking. */
int mars_top_run(const char *address);

#endif
