/* The workload generators: each writes the allocation trace of one realistic model run,
 * deterministically, from the model's layer table (ANCHORS §3). A --small variant scales the
 * resolution and length down for CI while keeping the layer structure. */
#ifndef VS_WORKLOADS_WORKLOADS_H
#define VS_WORKLOADS_WORKLOADS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "tools/workloads/emit.h"

struct vs_workload {
    const char *name;
    const char *summary;
    unsigned elt_bytes;                              /* 2: fp16, 4: fp32 */
    void (*generate)(struct vs_emit *e, bool small); /* events between header and end */
};

/* NULL-terminated list of every workload. */
extern const struct vs_workload vs_workloads[];

const struct vs_workload *vs_workload_find(const char *name);

/* Writes the whole trace to out. Returns 0, or -1 on a write error. Reports the trace's peak
 * of live bytes and its number of allocations when the pointers are not NULL. */
int vs_workload_write(const struct vs_workload *w, bool small, FILE *out, uint64_t *peak_live,
                      size_t *allocs);

void vs_workload_sdxl_vae_decode(struct vs_emit *e, bool small);
void vs_workload_wan21_vae_decode(struct vs_emit *e, bool small);
void vs_workload_wan22_vae_decode(struct vs_emit *e, bool small);
void vs_workload_dit_denoise(struct vs_emit *e, bool small);

#endif
