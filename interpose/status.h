/* The state of the process as one JSON object: what `vramshim ctl PID status` prints and
 * vramshim_stats_json() returns.
 *
 *   {"pid":P,"mode":"arena"|"fallback"|"passthrough","policy":FILE|null,"stage":NAME|null,
 *    "stack":[NAME,...],"live_bytes":N,"cached_bytes":N,"demoted_bytes":N,
 *    "stages":{"NAME":{"live_bytes":N,"demoted_bytes":N},...},"tags":{...},
 *    "devices":[{"device":0,"eviction":"on"|"off"|"unprobed","live_bytes":N,"cached_bytes":N,
 *                "pending_bytes":N,"device_bytes":N,"host_bytes":N,"demoted_bytes":N,
 *                "demotes":N,"promotes":N,"stages":{...},"tags":{...},
 *                "serving":"arena"|"driver"},...],
 *    "lending":{"ledger":BOOL,"lent_out":BOOL,"lends":N,"lent_released_bytes":N,
 *               "lend_refusals":N,"borrows":N,"borrowed_bytes":N}, "calls":{...}}
 * "lending": the process as a lender (interpose/lend.h: lends that moved memory, the device
 * bytes they released, requests refused, whether lent memory is still out) and as a borrower
 * (borrow.h: negotiations, the bytes peers released in them).
 * Each device is one arena's usage (allocator/evict.h, struct vs_arena_usage): device_bytes are
 * the device granules it holds, cached_bytes the free ones, host_bytes the host granules mapped;
 * stages and tags give the live bytes (requested sizes) of each name and the part of them in
 * host memory ("#ID" for an id without a name).
 * "fallback": arena mode after the arena fell back to the driver (vs_route_driver_serves); each
 * device then says "serving":"driver" and "eviction":"off".
 * Byte counts are summed over devices; allocations without a stage or tag are under "".
 */
#ifndef VS_INTERPOSE_STATUS_H
#define VS_INTERPOSE_STATUS_H

/* malloc'ed compact JSON text (no newline); NULL when out of memory. */
char *vs_status_json(void);

#endif
