/* Diagnostics of the shim: one `vramshim:` line per message on stderr.
 *
 * Invariants: a message is written with a single write(2) so lines of concurrent threads never
 * interleave; logging never allocates, so it is safe inside hooks, fork handlers and at exit; a
 * service thread's line never blocks (vs_log_service_thread).
 */
#ifndef VS_INTERPOSE_LOG_H
#define VS_INTERPOSE_LOG_H

enum vs_log_level { VS_LOG_ERROR, VS_LOG_WARN, VS_LOG_INFO, VS_LOG_DEBUG };

/* Reads VRAMSHIM_LOG (error|warn|info|debug, default warn). An unknown value keeps the default
 * and says so in one error line. */
void vs_log_init(void);

int vs_log_enabled(enum vs_log_level level);

__attribute__((format(printf, 2, 3))) void vs_log(enum vs_log_level level, const char *fmt, ...);

/* Marks the calling thread as one of the shim's own service threads (the control socket server),
 * whose lines outsiders can provoke: from then on its lines are rate-limited (a burst of
 * VS_LOG_BURST, then one per second) and written without ever blocking (a line that would block,
 * on a full stderr pipe, is dropped). The next line written says how many were left out. */
void vs_log_service_thread(void);
#define VS_LOG_BURST 10

#endif
