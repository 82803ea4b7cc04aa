/* The project's one logger: `vramshim:` lines at a level, to one sink. The allocator, the trace
 * writer and the interposer log through it; the interposer configures it (vs_log_init), the
 * CLI's replay and the tests install a sink.
 *
 * Invariants: the `vramshim: ` prefix is added here and nowhere else; a line is formatted in a
 * stack buffer and handed over whole (one write(2) to stderr, or one call of the sink), so lines
 * of concurrent threads never interleave and logging never allocates: it is safe inside hooks, on
 * the allocation path, in fork handlers and at exit; a service thread's line never blocks
 * (vs_log_service_thread).
 */
#ifndef VS_ALLOCATOR_LOG_H
#define VS_ALLOCATOR_LOG_H

enum vs_log_level { VS_LOG_ERROR, VS_LOG_WARN, VS_LOG_INFO, VS_LOG_DEBUG };

/* Reads VRAMSHIM_LOG (error|warn|info|debug, default warn). An unknown value keeps the default
 * and says so in one error line. */
void vs_log_init(void);

int vs_log_enabled(enum vs_log_level level);

__attribute__((format(printf, 2, 3))) void vs_log(enum vs_log_level level, const char *fmt, ...);

/* Where lines go: sink(line), the line without its newline; NULL (the default): stderr. */
void vs_log_set_sink(void (*sink)(const char *line));

/* Lines the calling thread has logged at an enabled level: a caller compares it before and after
 * a call to know whether that call already said why it failed. */
unsigned vs_log_thread_lines(void);

/* Writes the line to stderr whatever the level and the sink: the last line before abort(), which
 * a test's sink would keep from the report. */
__attribute__((format(printf, 1, 2))) void vs_log_fatal(const char *fmt, ...);

/* Marks the calling thread as one of the shim's own service threads (the control socket server),
 * whose lines outsiders can provoke: from then on its lines are rate-limited (a burst of
 * VS_LOG_BURST, then one per second) and written without ever blocking (a line that would block,
 * on a full stderr pipe, is dropped). The next line written says how many were left out. */
void vs_log_service_thread(void);
#define VS_LOG_BURST 10

#endif
