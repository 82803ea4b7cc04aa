/* Sparse deterministic contents and their checksum (see stripes.h). */
#include "tools/demo/lib/stripes.h"

#include <string.h>

/* splitmix64: a full-period 64-bit sequence; good enough to make every stripe distinct. */
static uint64_t vs_demo_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

size_t vs_demo_stripe_len(uint64_t bytes)
{
    return bytes < VS_DEMO_STRIPE ? (size_t)bytes : VS_DEMO_STRIPE;
}

size_t vs_demo_stripe_count(uint64_t bytes)
{
    return (size_t)(bytes / VS_DEMO_STRIDE) + (bytes % VS_DEMO_STRIDE >= vs_demo_stripe_len(bytes));
}

uint64_t vs_demo_stripe_offset(uint64_t seed, uint64_t bytes, size_t i)
{
    uint64_t start = (uint64_t)i * VS_DEMO_STRIDE;
    uint64_t span = bytes - start < VS_DEMO_STRIDE ? bytes - start : VS_DEMO_STRIDE;
    uint64_t slack = span - vs_demo_stripe_len(bytes); /* >= 0 by vs_demo_stripe_count */
    return start +
           ((vs_demo_mix(seed ^ (i * 0x632be59bd9b4e019ull)) % (slack + 1)) & ~(uint64_t)63);
}

void vs_demo_stripe_fill(uint64_t seed, size_t i, unsigned char *buf, size_t len)
{
    uint64_t state = vs_demo_mix(seed + i);
    for (size_t at = 0; at < len; at += 8) {
        uint64_t word = vs_demo_mix(state++);
        memcpy(buf + at, &word, len - at < 8 ? len - at : 8);
    }
}

uint64_t vs_demo_seed(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return h;
}

uint64_t vs_demo_hash(uint64_t h, const unsigned char *buf, size_t len)
{
    size_t at = 0;
    for (; at + 8 <= len; at += 8) {
        uint64_t word;
        memcpy(&word, buf + at, 8);
        h = vs_demo_mix(h ^ word);
    }
    for (; at < len; at++)
        h = vs_demo_mix(h ^ buf[at]);
    return h;
}
