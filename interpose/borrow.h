/* Borrowing device memory from peers on the same GPU (docs/lending.md).
 *
 * When an allocation fails with CUDA_ERROR_OUT_OF_MEMORY after the arena demoted this process's
 * own victims (or a stage's headroom cannot be met: vs_borrow_headroom), the allocation hook
 * asks the lenders of the GPU's ledger (entries of this user's
 * other live processes with lendable bytes and a control socket), largest lendable first, at
 * most VS_BORROW_PEERS of them, one `lend BYTES` request each over their control sockets, until
 * the bytes they released cover the request. When none released anything (a lender busy, not
 * idle for its idle_after yet), it asks again every VS_BORROW_POLL_MS, re-reading the ledger.
 * Then, if it asked anyone, it retries the allocation once. The whole
 * negotiation is bounded by the policy's [lend] wait (default VS_POLICY_DEFAULT_WAIT_MS;
 * `wait = 0s` never asks): every connect, send and receive gets what is left of it.
 *
 * A lender is believed only as far as this: its socket's peer must be the process its entry names,
 * of this user (SO_PEERCRED); its reply, one line of at most VS_BORROW_REPLY_MAX bytes, is parsed
 * and checked field by field (borrow_reply.h): only its released_bytes number and its refusal or
 * error text are taken from it.
 *
 * No deadlock, no livelock: nothing of the shim's is locked while a borrower waits for a peer (the
 * arena lock is released when the allocation fails); a process never borrows while it is serving
 * a lend, and never lends while one of its threads is borrowing (lend.h); one negotiation per
 * process at a time; per allocation at most VS_BORROW_PEERS requests a round, a round every
 * VS_BORROW_POLL_MS at most, within `wait`, and one retry.
 *
 * Borrowing is on where the ledger is (ledger_pub.h).
 */
#ifndef VS_INTERPOSE_BORROW_H
#define VS_INTERPOSE_BORROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VS_BORROW_PEERS 4
#define VS_BORROW_REPLY_MAX 512
#define VS_BORROW_POLL_MS 200 /* between two rounds of requests */
#define VS_BORROW_RECORDS 8   /* peers the log line names */

/* Asks peers for `bytes` on the current context's device (see above). True when it asked any:
 * the caller retries once then, since memory a peer released for another borrower at the same
 * time counts as well. Logs what was asked of whom and what came back. */
bool vs_borrow(uint64_t bytes);

/* A stage's or tag's `headroom` left unmet after demoting this process's own victims: on each
 * device still short of it, asks peers for the shortfall the same way (its line says `headroom
 * SIZE of NAME short by N`), then logs what is still missing. No lock of the shim may be held.
 * Nothing without a headroom rule. */
void vs_borrow_headroom(uint32_t name);

/* Negotiations so far, and the device bytes peers said they released in them. */
void vs_borrow_counters(uint64_t *borrows, uint64_t *released_bytes);

/* Whether a thread of this process is borrowing now. */
bool vs_borrow_active(void);

#endif
