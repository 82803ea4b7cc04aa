/* Publishing this process's numbers to the per-GPU ledgers (allocator/ledger.h,
 * docs/lending.md), so that `vramshim ctl --ledger` and peers short of memory see them.
 *
 * One thread, started once when the ledger is on (VRAMSHIM_LEDGER=1, or unset and the policy
 * has a [lend] section; never in pass-through), publishes for every device that has an arena:
 * pid, current stage, live, cached, demoted and lendable bytes, the control socket. It publishes
 * within VS_LEDGER_PUB_FIRST_MS of the first arena's creation (so a process is listed as soon as
 * it allocates), then every VS_LEDGER_PUB_PERIOD_MS and soon after a stage change
 * (vs_ledger_pub_poke: one non-blocking eventfd write). The host program never touches a ledger
 * lock: only this thread and the exit handler do, and each ledger operation gives up after its lock
 * timeout.
 *
 * Lendable bytes are the device-resident bytes of blocks whose stage or tag the policy's [lend]
 * gives (vs_policy_lends): what it would lend, once idle for idle_after (lend.h), if asked. The
 * idle clock (vs_ledger_pub_idle) counts from the last allocation, free or stage change seen by
 * the shim (sampled each period, so within one period).
 *
 * At exit the process's entries are removed; a killed process's entries are dropped by the next
 * ledger operation of any peer. A forked child's ledger is off: it publishes and removes
 * nothing, and neither lends nor borrows.
 */
#ifndef VS_INTERPOSE_LEDGER_PUB_H
#define VS_INTERPOSE_LEDGER_PUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VS_LEDGER_PUB_PERIOD_MS 500
#define VS_LEDGER_PUB_FIRST_MS 20 /* the period until the first arena exists */

struct vs_policy;

/* Starts the publishing thread if the ledger is on (see above), with the process's policy (NULL:
 * none), after eviction is configured with it and the control socket started. Once. */
void vs_ledger_pub_start(const struct vs_policy *policy);

/* Whether the publishing thread was started (the ledger is on). */
bool vs_ledger_pub_running(void);

/* The idle clock: milliseconds since the last allocation, free or stage change the shim saw (a
 * change is dated when it is first sampled, at most one period late). False when the ledger is
 * off. */
bool vs_ledger_pub_idle(uint64_t *idle_ms);

/* Device `ordinal`'s UUID, "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" as nvidia-smi -L prints it
 * (the ledger's key); false (logged) when the driver cannot say. */
bool vs_ledger_pub_device_uuid(int ordinal, char *buf, size_t len);

/* Asks for a publish soon (a stage changed). Never blocks; nothing when the thread is off. */
void vs_ledger_pub_poke(void);

#endif
