/*
 * hash.h - the checksums and hashes mars needs: CRC-32C for journal records (detects torn
 * and corrupt writes) and a 64-bit FNV-1a for file fingerprints and offset markers.
 */
#ifndef MARS_HASH_H
#define MARS_HASH_H

#include <stddef.h>
#include <stdint.h>

uint32_t mars_crc32c(uint32_t crc, const void *data, size_t len);
uint64_t mars_hash64(const void *data, size_t len);

#endif
