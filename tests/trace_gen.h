/* Synthetic traces of any length for the benchmark and the tests of long work: a vramshim trace
 * of allocations and frees in turn over 64 slots (about 32 blocks live) in 8 stages with call
 * sites, and a PyTorch snapshot pickle of the same loop (protocol 2, as pickle.dump writes). */
#ifndef VS_TESTS_TRACE_GEN_H
#define VS_TESTS_TRACE_GEN_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* n events: allocations and frees in turn over 64 slots (so about 32 blocks live), 8 stages. */
static inline int tg_write_trace(const char *path, unsigned n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "{\"vramshim_trace\":1,\"pid\":1,\"devices\":[{\"ordinal\":0,\"total\":%llu}]}\n",
            24ull << 30);
    for (unsigned s = 1; s <= 8; s++)
        fprintf(f, "{\"ev\":\"site\",\"site\":%u,\"frames\":[\"prog+0x%x phase%u+0x10\","
                   "\"prog+0x100 main+0x20\"]}\n", s, 0x1000 * s, s);
    unsigned live[64] = {0};
    uint64_t t = 1000;
    for (unsigned i = 0; i < n; i++, t += 1000) {
        unsigned slot = (i * 2654435761u) >> 26, stage = 1 + (i / (n / 8 + 1));
        uint64_t ptr = 0x7f0000000000ull + (uint64_t)slot * (1ull << 28);
        if (live[slot]) {
            fprintf(f, "{\"t\":%llu,\"ev\":\"free\",\"ptr\":\"0x%llx\",\"stream\":\"0x0\"}\n",
                    (unsigned long long)t, (unsigned long long)ptr);
            live[slot] = 0;
        } else {
            unsigned size = (1u << 20) * (1 + slot % 16);
            fprintf(f,
                    "{\"t\":%llu,\"ev\":\"alloc\",\"api\":\"cuMemAllocAsync\",\"ptr\":\"0x%llx\","
                    "\"size\":%u,\"stream\":\"0x0\",\"dev\":0,\"stage\":\"s%u\",\"tag\":\"\","
                    "\"site\":%u}\n",
                    (unsigned long long)t, (unsigned long long)ptr, size, stage, stage);
            live[slot] = 1;
        }
    }
    return fclose(f);
}

static inline void tg_put_str(FILE *f, const char *s)
{
    unsigned n = (unsigned)strlen(s);
    fputc('X', f);
    for (int b = 0; b < 4; b++)
        fputc((int)(n >> (8 * b)) & 0xff, f);
    fputs(s, f);
}

static inline void tg_put_int(FILE *f, uint32_t v)
{
    fputc('J', f);
    for (int b = 0; b < 4; b++)
        fputc((int)(v >> (8 * b)) & 0xff, f);
}

/* The same loop as a PyTorch snapshot (pickle protocol 2, as pickle.dump writes plain data). */
static inline int tg_write_snapshot(const char *path, unsigned n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fputs("\x80\x02}", f);
    tg_put_str(f, "segments");
    fputs("]s", f);
    tg_put_str(f, "device_traces");
    fputs("]](", f);
    unsigned live[64] = {0};
    for (unsigned i = 0; i < n; i++) {
        unsigned slot = (i * 2654435761u) >> 26;
        fputs("}(", f);
        tg_put_str(f, "action");
        tg_put_str(f, live[slot] ? "free_completed" : "alloc");
        tg_put_str(f, "addr");
        tg_put_int(f, 0x10000000u + slot * 0x1000000u);
        tg_put_str(f, "size");
        tg_put_int(f, (1u << 20) * (1 + slot % 16));
        tg_put_str(f, "stream");
        tg_put_int(f, 0);
        tg_put_str(f, "time_us");
        tg_put_int(f, i);
        tg_put_str(f, "frames");
        fputs("]}(", f);
        tg_put_str(f, "filename");
        tg_put_str(f, "/home/me/gen.py");
        tg_put_str(f, "line");
        tg_put_int(f, 10 + slot % 8);
        tg_put_str(f, "name");
        tg_put_str(f, slot % 2 ? "Pipeline.denoise" : "Pipeline.decode");
        fputs("ua", f);
        fputc('u', f);
        live[slot] = !live[slot];
    }
    fputs("eas.", f);
    return fclose(f);
}

#endif
