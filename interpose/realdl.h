/* The C library's own dlsym, found without going through the shim's dlsym override.
 *
 * Invariant: vs_real_dlsym() never calls the override and never allocates after the first
 * successful call (the pointer is cached), so it is safe from any hook or from the override.
 */
#ifndef VS_INTERPOSE_REALDL_H
#define VS_INTERPOSE_REALDL_H

typedef void *(*vs_dlsym_fn)(void *handle, const char *name);

/* For code the dlsym override runs for every look-up: a sanitizer runtime resolves its own
 * interceptors with dlsym before its shadow memory (TSan: its thread state) exists, so this code
 * must not be instrumented (no effect in normal builds). Under TSan the function entry and exit
 * hooks, which this attribute keeps, are also turned off for these files (Makefile). */
#define VS_UNINSTRUMENTED __attribute__((no_sanitize("address", "undefined", "thread")))

/* NULL only on a C library without versioned dlsym (logged once). */
vs_dlsym_fn vs_real_dlsym(void);

#endif
