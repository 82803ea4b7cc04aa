/* The per-GPU ledger (docs/lending.md): one small file per GPU and user in which every vramshim
 * process of that user on that GPU publishes what it holds and what it would lend, so that a
 * process short of memory knows whom to ask.
 *
 * File: DIR/gpu-UUID.ledger, DIR being $XDG_RUNTIME_DIR/vramshim, else /tmp/vramshim-UID
 * (created 0700). A header {magic, version, entry size, entry count, checksum, GPU UUID} and at
 * most VS_LEDGER_ENTRIES fixed-size entries.
 *
 * Invariants:
 * - Nothing in the file is believed before it is checked: the directory and the file must be
 *   this user's, of no group or other access (fstat after an O_NOFOLLOW open), and the contents
 *   must have the right magic, version, sizes, UUID and checksum, every string terminated. A
 *   ledger failing a content check is rebuilt empty (one `vramshim:` line says why); a directory
 *   or file failing an ownership or mode check is refused (one line naming it), never touched.
 * - An entry belongs to the process {pid, start time}; a process edits only its own entry. The
 *   entries of processes that are gone, zombies, or not this user's are dropped by every
 *   operation, so a reused pid never inherits an entry.
 * - Every operation holds an exclusive flock on the file, taken without blocking and retried for
 *   at most the handle's timeout, so the host program never waits longer than that on a peer.
 *   The file is opened anew for each operation (a child forked after vs_ledger_open would
 *   otherwise share the parent's lock).
 * - The handle is for one thread at a time.
 */
#ifndef VS_LEDGER_H
#define VS_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#define VS_LEDGER_ENTRIES 64
#define VS_LEDGER_STAGE_LEN 32
#define VS_LEDGER_SOCKET_LEN 108 /* sun_path */
#define VS_LEDGER_UUID_LEN 64
#define VS_LEDGER_TIMEOUT_MS 200 /* default wait for the lock */

struct vs_ledger_entry {
    int32_t pid;
    uint32_t reserved;                 /* 0 */
    uint64_t start_time;               /* the process's start (clock ticks after boot) */
    uint64_t live, cached, demoted;    /* device bytes in use, cached free, demoted to host */
    uint64_t lendable;                 /* device bytes it would give back if asked now */
    uint64_t updated_ns;               /* CLOCK_REALTIME of the last publish */
    char stage[VS_LEDGER_STAGE_LEN];   /* current stage, "" for none */
    char socket[VS_LEDGER_SOCKET_LEN]; /* its control socket, "" for none */
};

struct vs_ledger;

/* The user's ledger directory (see above) into buf, made 0700 if missing. 0, or -1 (errno). */
int vs_ledger_dir(char *buf, size_t len);

/* Opens the ledger of the GPU whose UUID is gpu_uuid (1-63 of [A-Za-z0-9-]) in dir (NULL: the
 * user's runtime directory, created if missing); timeout_ms bounds each lock wait (<= 0: the
 * default). NULL when refused, with one `vramshim: ledger ...` line in err. */
struct vs_ledger *vs_ledger_open(const char *dir, const char *gpu_uuid, int timeout_ms, char *err,
                                 size_t errlen);
void vs_ledger_close(struct vs_ledger *l);
const char *vs_ledger_path(const struct vs_ledger *l);
/* The `vramshim: ledger ...` line of the last failed operation. */
const char *vs_ledger_error(const struct vs_ledger *l);

/* Publishes this process's entry (e's pid, start time and update time are filled in), replacing
 * its previous one. 0, or -1 (ledger full of live processes, lock timeout, I/O, bad string). */
int vs_ledger_publish(struct vs_ledger *l, const struct vs_ledger_entry *e);
/* Removes this process's entry (none: nothing to do). 0 or -1. */
int vs_ledger_remove(struct vs_ledger *l);
/* Copies up to cap live entries of this user's processes (this one's included) to out; returns
 * how many there are (may exceed cap), or -1. */
int vs_ledger_list(struct vs_ledger *l, struct vs_ledger_entry *out, size_t cap);

/* The start time of process pid if it is alive, not a zombie and this user's, else 0. */
uint64_t vs_ledger_proc_start(int pid);

#endif
