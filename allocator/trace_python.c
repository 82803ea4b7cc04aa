/* Python frames of a call site, when the process runs Python: the innermost VS_PY_FRAMES
 * frames of the calling thread, as (code object, line) for the site's identity and as
 * "py:FILE:LINE:QUALNAME" text once per new site.
 *
 * Invariants: the interpreter is only touched through its stable C API, found by name in the
 * process (no Python headers, no link dependency), and only when it is initialised and the
 * calling thread holds the GIL (PyGILState_Check): extension calls that keep the GIL (ctypes.PyDLL,
 * many C extensions). Threads that released it (PyTorch operators do, before allocating) get no
 * Python frames: reading them would need the GIL, and taking it inside an allocation can
 * deadlock against a thread that holds the GIL and waits for the allocator. References taken
 * while walking are released before returning; code pointers serve only as identity.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocator/trace_internal.h"

static struct {
    int (*is_initialized)(void);
    int (*gil_check)(void);
    void *(*get_frame)(void);         /* borrowed */
    void *(*frame_back)(void *frame); /* new reference */
    void *(*frame_code)(void *frame); /* new reference */
    int (*frame_line)(void *frame);
    void (*decref)(void *obj);
    void *(*getattr)(void *obj, const char *name); /* new reference */
    const char *(*utf8)(void *str);
    void (*err_clear)(void);
} py;
static bool py_present;
static pthread_once_t py_once = PTHREAD_ONCE_INIT;

static void find_python(void)
{
#define VS_PY_SYM(field, name) *(void **)&py.field = dlsym(RTLD_DEFAULT, name)
    VS_PY_SYM(is_initialized, "Py_IsInitialized");
    VS_PY_SYM(gil_check, "PyGILState_Check");
    VS_PY_SYM(get_frame, "PyEval_GetFrame");
    VS_PY_SYM(frame_back, "PyFrame_GetBack");
    VS_PY_SYM(frame_code, "PyFrame_GetCode");
    VS_PY_SYM(frame_line, "PyFrame_GetLineNumber");
    VS_PY_SYM(decref, "Py_DecRef");
    VS_PY_SYM(getattr, "PyObject_GetAttrString");
    VS_PY_SYM(utf8, "PyUnicode_AsUTF8");
    VS_PY_SYM(err_clear, "PyErr_Clear");
#undef VS_PY_SYM
    /* PyFrame_GetBack/GetCode exist from Python 3.9 on; older interpreters get native frames. */
    py_present = py.is_initialized && py.gil_check && py.get_frame && py.frame_back &&
                 py.frame_code && py.frame_line && py.decref && py.getattr && py.utf8 &&
                 py.err_clear;
}

unsigned vs_py_capture(struct vs_py_frame *out, unsigned max)
{
    pthread_once(&py_once, find_python);
    if (!py_present || !py.is_initialized() || py.gil_check() != 1)
        return 0;
    unsigned n = 0;
    void *frame = py.get_frame(), *owned = NULL;
    while (frame && n < max) {
        out[n].code = py.frame_code(frame);
        out[n].line = py.frame_line(frame);
        n++;
        void *back = py.frame_back(frame);
        if (owned)
            py.decref(owned);
        owned = frame = back;
    }
    if (owned)
        py.decref(owned);
    return n;
}

/* A string attribute of a code object, or NULL (with the Python error cleared). */
static const char *code_attr(void *code, const char *name, void **ref)
{
    *ref = py.getattr(code, name);
    const char *s = *ref ? py.utf8(*ref) : NULL;
    if (!s)
        py.err_clear();
    return s;
}

char *vs_py_describe(const struct vs_py_frame *f)
{
    void *file_ref, *name_ref = NULL;
    const char *file = code_attr(f->code, "co_filename", &file_ref);
    /* co_qualname (Class.method) from Python 3.11 on, co_name before. */
    const char *name = code_attr(f->code, "co_qualname", &name_ref);
    if (!name) {
        if (name_ref)
            py.decref(name_ref);
        name = code_attr(f->code, "co_name", &name_ref);
    }
    char text[1024];
    snprintf(text, sizeof text, "py:%s:%d:%s", file ? file : "?", f->line, name ? name : "?");
    if (file_ref)
        py.decref(file_ref);
    if (name_ref)
        py.decref(name_ref);
    return strdup(text);
}

void vs_py_release(struct vs_py_frame *frames, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        py.decref(frames[i].code);
}
