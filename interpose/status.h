/* The state of the process as one JSON object: what `vramshim ctl PID status` prints and
 * vramshim_stats_json() returns.
 *
 *   {"pid":P,"mode":"arena"|"fallback"|"passthrough","policy":FILE|null,"stage":NAME|null,
 *    "stack":[NAME,...],"live_bytes":N,"cached_bytes":N,"demoted_bytes":N,
 *    "stages":{"NAME":{"live_bytes":N,"demoted_bytes":N},...},"tags":{...},
 *    "devices":[per-arena usage, allocator/evict.h vs_arena_usage_json, plus
 *               "serving":"arena"|"driver"]}
 * "fallback": arena mode after the arena fell back to the driver (vs_route_driver_serves); each
 * device then says "serving":"driver" and "eviction":"off".
 * Byte counts are summed over devices; allocations without a stage or tag are under "".
 */
#ifndef VS_INTERPOSE_STATUS_H
#define VS_INTERPOSE_STATUS_H

/* malloc'ed compact JSON text (no newline); NULL when out of memory. */
char *vs_status_json(void);

#endif
