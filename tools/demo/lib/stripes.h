/* Sparse, deterministic contents for GiB-sized buffers.
 *
 * Writing every byte of a 25 GB model would cost 25 GB of host memory on the simulated driver
 * (and minutes); instead a buffer holds one stripe of VS_DEMO_STRIPE bytes in each
 * VS_DEMO_STRIDE (2 MiB, the VMM granule) of its length, at an offset inside that 2 MiB that
 * depends on the buffer's seed, filled with a pseudo-random sequence of the same seed. Every
 * granule of a weight therefore carries data whose position and value identify it: a granule
 * lost, zeroed, swapped with another or mapped at the wrong place changes the checksum.
 *
 * Invariants: stripes never overlap, lie inside the buffer, start 64-byte aligned, and are
 * numbered in address order; the same (seed, bytes) always gives the same stripes and bytes.
 */
#ifndef VS_DEMO_STRIPES_H
#define VS_DEMO_STRIPES_H

#include <stddef.h>
#include <stdint.h>

enum { VS_DEMO_STRIPE = 4096, VS_DEMO_STRIDE = 2 << 20 };

/* Bytes per stripe of a buffer of `bytes` (bytes > 0): VS_DEMO_STRIPE, or less for a tiny one. */
size_t vs_demo_stripe_len(uint64_t bytes);

/* Number of stripes of a buffer of `bytes`: one per whole 2 MiB, plus one for a tail that can
 * hold a stripe. */
size_t vs_demo_stripe_count(uint64_t bytes);

/* Offset of stripe i (i < vs_demo_stripe_count(bytes)) from the buffer's start. */
uint64_t vs_demo_stripe_offset(uint64_t seed, uint64_t bytes, size_t i);

/* Writes stripe i's len bytes for seed into buf. */
void vs_demo_stripe_fill(uint64_t seed, size_t i, unsigned char *buf, size_t len);

/* Seed of a named buffer (a hash of the name). */
uint64_t vs_demo_seed(const char *name);

/* Folds len bytes into the running 64-bit checksum h (start with 0); order-sensitive. */
uint64_t vs_demo_hash(uint64_t h, const unsigned char *buf, size_t len);

#endif
