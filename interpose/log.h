/* Diagnostics of the shim: one `vramshim:` line per message on stderr.
 *
 * Invariants: a message is written with a single write(2) so lines of concurrent threads never
 * interleave; logging never allocates, so it is safe inside hooks, fork handlers and at exit.
 */
#ifndef VS_INTERPOSE_LOG_H
#define VS_INTERPOSE_LOG_H

enum vs_log_level { VS_LOG_ERROR, VS_LOG_WARN, VS_LOG_INFO, VS_LOG_DEBUG };

/* Reads VRAMSHIM_LOG (error|warn|info|debug, default warn). An unknown value keeps the default
 * and says so in one error line. */
void vs_log_init(void);

int vs_log_enabled(enum vs_log_level level);

__attribute__((format(printf, 2, 3))) void vs_log(enum vs_log_level level, const char *fmt, ...);

#endif
