/* vramshim public C API, exported by libvramshim.so.
 *
 * Programs that want explicit control call these directly (or through ctypes.CDLL(None) from a
 * preloaded Python process). Every function is safe to call before the first CUDA call.
 */
#ifndef VRAMSHIM_H
#define VRAMSHIM_H

#ifdef __cplusplus
extern "C" {
#endif

/* The shim's version, "MAJOR.MINOR.PATCH". */
const char *vramshim_version(void);

#ifdef __cplusplus
}
#endif

#endif
