/*
 * json_internal.h - what json.c (the scanner) and json_raw.c (reading validated text) share.
 */
#ifndef MARS_JSON_INTERNAL_H
#define MARS_JSON_INTERNAL_H

/* Reads 4 hex digits at p (bounds checked by the caller). Returns the value or -1. */
long mars_json_hex4(const unsigned char *p);

#endif
