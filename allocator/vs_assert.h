/* Internal invariants checked in code, where checking is cheap (a comparison on a path that
 * already touches the data).
 *
 * vs_assert(cond, fmt, ...): when cond is false, one line
 *     vramshim: internal invariant broken at FILE:LINE (cond): message
 * then, in checking runs, abort(): builds with -DVS_CHECKED (`make asan`, `make tsan`,
 * `make soak`) and any process with VRAMSHIM_INVARIANTS=abort (tests/run.sh sets it). Elsewhere
 * (a release shim inside someone's program) each site logs once and the shim goes on: the
 * line is for the bug report, the host process must not die of it.
 */
#ifndef VS_ALLOCATOR_VS_ASSERT_H
#define VS_ALLOCATOR_VS_ASSERT_H

#include <stdatomic.h>
#include <stdbool.h>

/* Logs the line (once per site unless checking) and aborts when checking. */
void vs_invariant_failed(atomic_flag *site, const char *file, int line, const char *cond,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6), cold));

#define vs_assert(cond, ...)                                                              \
    do {                                                                                  \
        if (__builtin_expect(!(cond), 0)) {                                               \
            static atomic_flag vs_assert_site_ = ATOMIC_FLAG_INIT;                        \
            vs_invariant_failed(&vs_assert_site_, __FILE__, __LINE__, #cond, __VA_ARGS__); \
        }                                                                                 \
    } while (0)

#endif
