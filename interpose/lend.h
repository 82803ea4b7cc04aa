/* Lending device memory to a peer on the same GPU (docs/lending.md): what the control socket's
 * `lend BYTES` runs, and the promotion of lent memory when the process is active again.
 *
 * A lend demotes, on every device, each live block the policy's [lend] gives (vs_policy_lends:
 * its stage or tag in `lend`, neither in `never`) and returns the device granules freed to the
 * driver (a requested demote, allocator/evict.h). It gives all of that memory, whatever BYTES
 * asks: a server with part of its weights in host memory answers about as slowly as with all of
 * them, and the borrower takes what it needs. It gives nothing when the policy lends nothing,
 * when the process has not been idle for idle_after (the ledger's idle clock, ledger_pub.h),
 * while one of its threads is borrowing (borrow.h), in pass-through or after a fallback to the
 * driver.
 *
 * Promotion back ("on use"): the process's first allocation served by the arena (so not one
 * captured into a graph) VS_LEND_HOLD_MS or more after the lend (the borrower's retry comes
 * first) promotes the lent blocks, in the allocating thread, before it is served: a program reads
 * its weights after such an allocation (the KV cache of a request), and a move must never run while
 * the program touches what it moves, so it is not done from a thread of the shim. A device's lent
 * blocks come back whole, once the device has room for all of them (free memory and the arena's
 * free granules), so the lender never takes the bits of room a borrower still works in; until then
 * they stay in host memory and room is looked for again at an allocation VS_LEND_RETRY_MS later.
 * Nothing of a peer's is demoted to make room.
 *
 * Thread-safe: lends and promotions are serialised by one mutex (each is bounded by its move).
 */
#ifndef VS_INTERPOSE_LEND_H
#define VS_INTERPOSE_LEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VS_LEND_HOLD_MS 1000
#define VS_LEND_RETRY_MS 500

struct vs_lend_result {
    size_t demoted;     /* bytes of granules moved to host memory */
    size_t released;    /* device bytes the arenas gave back to the driver */
    const char *reason; /* why nothing was lent (static text), NULL when it was tried */
};

/* What this process lent and borrowed so far (the status's "lending" object). */
struct vs_lend_counters {
    bool lent_out;              /* lent memory not all back yet */
    uint64_t lends;             /* requests that moved memory */
    uint64_t released_bytes;    /* device bytes those gave back to the driver */
    uint64_t refused;           /* requests answered with nothing lent */
};
void vs_lend_counters(struct vs_lend_counters *out);

/* Lends on a request of process peer_pid (0: unknown) for `bytes` (see above). */
void vs_lend(uint64_t bytes, int peer_pid, struct vs_lend_result *out);

/* Whether a lend is being served now (a borrow waits for none then: borrow.h). */
bool vs_lend_serving(void);

/* The allocation path's step: promotes lent memory back when due (see above); one relaxed atomic
 * load when nothing is lent out. */
void vs_lend_on_use(void);

#endif
