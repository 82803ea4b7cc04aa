/* simcuda: test controls exported by the simulated driver build/sim/libcuda.so.1.
 *
 * Plain C, no project includes; a test links the library (or dlsyms these names) and includes
 * this header next to <cuda.h>.
 *
 * Model (what a test can rely on):
 * - Device memory is host memory: a device pointer of mapped, accessible memory can be read and
 *   written by the CPU directly. Physical memory (cuMemCreate, cuMemAlloc, pools) lives in a sparse
 *   memfd per device (host-NUMA handles in a separate one): pages never written cost nothing,
 *   released memory and memset-to-zero punch holes, copies of unwritten ranges stay unwritten.
 * - Capacity: SIMCUDA_VRAM (default 24GiB) per device minus SIMCUDA_VRAM_TAKEN (memory held by
 *   other processes, default 0); host-NUMA handles draw from SIMCUDA_HOST_MEM (default 64GiB).
 *   Sizes accept plain bytes or KiB/MiB/GiB/TiB suffixes (also K/M/G/T, KB/MB/GB/TB = 1024-based).
 *   Every physical allocation is rounded up to the 2 MiB granule and counted at that size.
 * - cuMemAlloc_v2 / cuMemAllocPitch_v2 pack small requests as the driver does: a request below
 *   1 MiB is carved, 512-byte aligned and best fit, from a 2 MiB page shared with other small
 *   allocations of the device (a new page is mapped when none has room; an empty page is released
 *   at once), so 1000 allocations of 512 B take one page. A request of 1 MiB or more maps its own
 *   physical memory rounded up to 2 MiB. cuMemGetAddressRange_v2 and pointer attributes report
 *   each allocation's own base and requested size (and its own BUFFER_ID); the free space of a
 *   shared page is not a known pointer.
 * - Memory pools carve their allocations (512-byte aligned, best fit) out of chunks of physical
 *   memory they reserve: a request no free gap holds maps a new chunk of its size rounded up to
 *   2 MiB, whose remainder serves later requests; freed space coalesces with free neighbours.
 *   RESERVED_MEM_* counts the chunks, USED_MEM_* the 512-byte-rounded sizes of live allocations.
 *   Empty chunks stay reserved until trimmed (release threshold, cuMemPoolTrimTo, maxSize, or
 *   before a request would fail with CUDA_ERROR_OUT_OF_MEMORY).
 * - simcuda_physical_in_use and cuMemGetInfo_v2 count every page or chunk once, however many
 *   allocations it holds: a request fails with CUDA_ERROR_OUT_OF_MEMORY exactly when it needs new
 *   physical memory beyond SIMCUDA_VRAM - SIMCUDA_VRAM_TAKEN. Whole OS pages of freed space are
 *   given back to the host (hole punching).
 * - Streams: each stream has a worker thread running its queued work in order. The legacy default
 *   stream (0 or CU_STREAM_LEGACY from non-_ptsz entry points) waits for prior work of all blocking
 *   streams of its context and every blocking stream waits for prior legacy work;
 *   CU_STREAM_NON_BLOCKING streams do neither. The per-thread default stream (CU_STREAM_PER_THREAD,
 *   or 0 passed to a _ptsz/_ptds entry point) is a blocking stream private to the calling thread.
 *   Synchronous copies and memsets (cuMemcpyHtoD_v2, cuMemsetD8_v2, ...) are queued on the
 *   legacy default stream (per-thread stream for _ptds) and waited for; cuMemFree_v2 waits for all
 *   streams of the context first, as cudaFree does. So while a blocking stream is held, synchronous
 *   calls block until it is released: hold CU_STREAM_NON_BLOCKING streams when the test inspects
 *   memory with synchronous calls in between.
 * - Async copies read and write host memory when they run in stream order (pinned-memory
 *   semantics). Page-locked host memory (cuMemHostAlloc, cuMemHostRegister) is ordinary host
 *   memory that pointer queries report as CU_MEMORYTYPE_HOST.
 * - Memory pools release cached memory above their release threshold at cuStreamSynchronize,
 *   cuEventSynchronize and cuCtxSynchronize, as the driver does. Memory freed with cuMemFreeAsync
 *   is reusable at once by the freeing stream (which may take part of it), by other streams once
 *   the free ran.
 * - cuMemGetInfo_v2 with a NULL argument returns CUDA_ERROR_INVALID_VALUE (as the driver).
 * - fork(): NVIDIA's driver is unusable in a child forked after cuInit (cuInit and every other call
 *   return CUDA_ERROR_NOT_INITIALIZED there). simcuda instead keeps the child usable, because
 *   tests fork while tracing, and never lets it hang: the fork waits for threads inside the driver
 *   to leave it, so the child starts with no lock held and consistent state. In the child, work
 *   queued or running on streams at the fork is the parent's: it counts as complete and never
 *   runs there (host functions included; its device-memory effects come from the parent), its
 *   stream-ordered frees take effect at once, and streams are no longer held. Memory created
 *   before the fork stays MAP_SHARED with the parent: writes by either process are seen by the
 *   other, and freeing it in the child only returns the child's capacity (the parent's data is
 *   untouched). Memory the child creates afterwards is private to it, and no new allocation is
 *   carved out of pages or pool chunks mapped before the fork. Capacity, counters and handles are
 *   per-process copies from the moment of the fork.
 * - Legacy 32-bit entry points (cuMemAlloc, cuMemFree, ... without _v2) exist so that
 *   cuGetProcAddress resolves them for old cudaVersions; cuMemAlloc returns
 *   CUDA_ERROR_NOT_SUPPORTED because a 64-bit device address does not fit its 32-bit result.
 *
 * Environment (read by cuInit; SIMCUDA_FAIL and SIMCUDA_LOG by the first call of any entry
 * point):
 *   SIMCUDA_VRAM=SIZE  SIMCUDA_VRAM_TAKEN=SIZE  SIMCUDA_HOST_MEM=SIZE  SIMCUDA_DEVICES=N (1..16)
 *   SIMCUDA_GRANULE=SIZE  allocation granularity (a power of two, 64KiB..2MiB; default 2MiB, a
 *       GPU's): cuMemGetAllocationGranularity, cuMemCreate/cuMemMap sizes and the driver's own
 *       allocations round to it. To measure what a finer granularity would change.
 *   SIMCUDA_FAIL=name:nth[:CUDA_ERROR_X][,...]  the nth call (1-based, counted per exported entry
 *       point, e.g. cuMemMap:3) returns CUDA_ERROR_OUT_OF_MEMORY or the named error, doing nothing.
 *   SIMCUDA_LOG=error|warn|info|debug (default warn): `simcuda:` lines on stderr.
 *   SIMCUDA_SHARED=NAME  processes with the same NAME (1-64 of [A-Za-z0-9._-]) and user share one
 *       simulated GPU: device allocations of every one of them count against one capacity, so
 *       cuMemGetInfo, OOMs and releases are seen by all, and the memory of a process that exited
 *       or was killed goes back to the device. The capacity lives in the shared-memory segment
 *       /dev/shm/simcuda-UID-NAME (mode 0600); a segment owned by another user, of another mode,
 *       of the wrong size or with a bad header makes cuInit fail with one line naming it, as does a
 *       process whose SIMCUDA_VRAM/SIMCUDA_DEVICES differ from those of the attached processes.
 *       SIMCUDA_VRAM_TAKEN and simcuda_set_vram_taken stay per process; host-NUMA memory,
 *       handles, pointers and data are never shared.
 */
#ifndef SIMCUDA_H
#define SIMCUDA_H

#include <stddef.h>
#include <sys/types.h>
#include <cuda.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Stop running queued work of stream s (0, CU_STREAM_LEGACY and CU_STREAM_PER_THREAD name the
 * calling thread's default streams of the current context): events recorded on it stay
 * CUDA_ERROR_NOT_READY until simcuda_release_stream. Returns 0, or -1 for an unknown stream. */
int simcuda_hold_stream(CUstream s);
int simcuda_release_stream(CUstream s);

/* Device bytes backed by physical allocations right now (cuMemCreate handles not yet freed,
 * cuMemAlloc pages and pool chunks, each counted once), granule-rounded. 0 for an unknown device
 * or before cuInit. */
size_t simcuda_physical_in_use(int device);

/* Device bytes in use by every process on the device: with SIMCUDA_SHARED the charges of all
 * live attached processes (those of dead ones are reclaimed first), else this process's
 * (simcuda_physical_in_use). */
size_t simcuda_device_in_use(int device);

/* Device bytes held by process pid: with SIMCUDA_SHARED any attached process's (0 once it freed
 * them, exited or was killed), else this process's own (0 for another pid). */
size_t simcuda_process_in_use(int device, pid_t pid);

/* Host-NUMA bytes backed by physical allocations right now (cuMemCreate handles not yet freed). */
size_t simcuda_host_physical_in_use(void);

/* Bytes mapped with cuMemMap right now, in every process-made reservation. */
size_t simcuda_mapped_bytes(void);

/* How many times the exported entry point named exactly `symbol` was called (every call counts,
 * failed ones included), the calls of all entry points together, and resetting all counters to
 * zero. */
unsigned long simcuda_call_count(const char *symbol);
unsigned long simcuda_call_total(void);
void simcuda_reset_call_counts(void);

/* Makes the nth call (1-based, counted from now on, i.e. after the calls already made) of entry
 * point `symbol` return `err` without doing anything. Returns 0, or -1 for nth == 0. */
int simcuda_fail_call(const char *symbol, unsigned long nth, CUresult err);

/* Sets the memory held by other processes on `device` (what SIMCUDA_VRAM_TAKEN sets at cuInit).
 * Returns 0, or -1 for an unknown device or before cuInit. */
int simcuda_set_vram_taken(int device, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif
