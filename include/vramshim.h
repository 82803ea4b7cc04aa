/* vramshim public C API, exported by libvramshim.so.
 *
 * Programs that want explicit control call these directly, look them up with
 * dlsym(RTLD_DEFAULT, "vramshim_stage_begin") (so they also run without the shim), or use them
 * through ctypes.CDLL(None) from a preloaded Python process.
 *
 * Every function is thread-safe, may be called before the first CUDA call, and never crashes on
 * a NULL argument or a pointer that is not an allocation: it returns an error code instead.
 * Return codes are the VRAMSHIM_* values below (0 success, negative errors); the functions
 * writing into a buffer return a length, like snprintf.
 *
 * Stages. A stage is a named phase of the program ("text_encode", "denoise", "decode", ...):
 * 1 to 40 characters of letters, digits and `_ . - : / @ +`. The process has one stack of
 * stages; the current stage is its top. vramshim_stage_begin pushes; vramshim_stage_end pops the
 * named stage, which must be the innermost one begun with vramshim_stage_begin (or `vramshim ctl
 * PID stage`); stages begun by a policy's call-site `match` rules above it end with it. A call-site
 * stage does not nest: it replaces a call-site stage on top of the stack and stays current until
 * another stage begins or an enclosing stage ends. Every allocation records the stage current when
 * it is made (and its tag); stage changes are `{"ev":"stage"}` trace events.
 */
#ifndef VRAMSHIM_H
#define VRAMSHIM_H

#include <stddef.h>

#include <cuda.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    VRAMSHIM_OK = 0,
    VRAMSHIM_EINVAL = -1,       /* NULL or invalid name, bad buffer */
    VRAMSHIM_ENOTFOUND = -2,    /* no such open stage / live allocation / stage or tag name */
    VRAMSHIM_EMISMATCH = -3,    /* stage_end of a stage that is not the innermost (nothing ends) */
    VRAMSHIM_EDEPTH = -4,       /* stage stack full (64 stages deep) */
    VRAMSHIM_EUNSUPPORTED = -5, /* needs the arena / eviction, which is off in this process */
    VRAMSHIM_EFAIL = -6,        /* internal failure (logged on stderr); nothing changed */
};

/* The shim's version, "MAJOR.MINOR.PATCH". */
const char *vramshim_version(void);

/* Begins stage `name` (pushes it; the policy's actions for it run: evict to reach its headroom,
 * prefetch). 0, or EINVAL, EDEPTH, EFAIL. */
int vramshim_stage_begin(const char *name);

/* Ends stage `name`, which must be the innermost stage begun by the API or ctl. 0, or EINVAL,
 * ENOTFOUND (not open), EMISMATCH (open but another API stage is inside it). */
int vramshim_stage_end(const char *name);

/* Tags the live allocation whose base address is p. 0, or EINVAL (bad tag name), ENOTFOUND (p
 * is not the base of a live arena allocation: passthrough mode, freed or foreign pointers). */
int vramshim_tag(CUdeviceptr p, const char *tag);

/* Moves every allocation made in stage (or carrying tag) `stage_or_tag` to host memory under
 * the same device addresses (demote) / back to device memory (promote); pointers stay valid and
 * contents are kept bit for bit. 0 (also when nothing was to move: stats_json tells what moved),
 * or EINVAL, ENOTFOUND (a name never used), EUNSUPPORTED (no arena, or the driver cannot map host
 * memory), EFAIL (driver error before anything moved; what moved before a later error stays). */
int vramshim_demote(const char *stage_or_tag);
int vramshim_promote(const char *stage_or_tag);

/* Writes a JSON object with the state of the process (the control socket's `status`) into
 * buf[0..n), NUL-terminated when n > 0, and returns the length of the full text (like snprintf):
 * call again with a larger buffer when the result is >= n. buf may be NULL when n is 0. EFAIL. */
int vramshim_stats_json(char *buf, size_t n);

/* For Python auto-hooks: the stage that entry to the function `qualname` ("VAE.decode") of module
 * `module` ("comfy.sd", may be NULL or "") begins under VRAMSHIM_POLICY. Writes the stage name into
 * stage_buf like snprintf and returns its length; 0 when no stage rule matches (or no policy);
 * EINVAL when qualname is NULL or stage_buf is NULL with n > 0. */
int vramshim_policy_match_function(const char *module, const char *qualname, char *stage_buf,
                                   size_t n);

/* The policy's stage match patterns as a JSON array of strings ([] without a policy), so a hook
 * can skip functions whose names cannot match; written like vramshim_stats_json. */
int vramshim_policy_patterns_json(char *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif
