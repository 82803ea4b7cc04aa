/* The names a frame string is matched by (see vs_policy_match_frames in policy.h):
 *   "module+0xOFF symbol+0xOFF"  -> "symbol"       (a frame without a symbol has no name)
 *   "symbol"                     -> "symbol"
 *   "py:FILE:LINE:QUALNAME"      -> "QUALNAME", then "M.QUALNAME" for the dotted suffixes M of
 *                                   FILE's module path, shortest first (.../comfy/sd.py gives
 *                                   "sd.", "comfy.sd.", ...; a package's __init__.py is the
 *                                   package), at most VS_MODULE_DEPTH of them.
 * Names longer than VS_FRAME_NAME_MAX are skipped. */
#ifndef VS_POLICY_FRAME_H
#define VS_POLICY_FRAME_H

#include <stdbool.h>
#include <stddef.h>

#define VS_MODULE_DEPTH 8
#define VS_FRAME_NAME_MAX 512

/* Calls visit(ctx, name, len) with each name (NUL-terminated) until it returns true; returns
 * whether one did. */
typedef bool (*vs_name_visitor)(void *ctx, const char *name, size_t len);

bool vs_frame_names(const char *frame, vs_name_visitor visit, void *ctx);

/* The names of a Python function: qualname, then "M.qualname" for the dotted suffixes M of
 * module (which may be NULL or ""). */
bool vs_function_names(const char *module, size_t module_len, const char *qualname,
                       size_t qual_len, vs_name_visitor visit, void *ctx);

#endif
