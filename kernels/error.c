/* vs_err_set: a message too long for the buffer is cut, never overflowed. */
#include "kernels/error.h"

#include <stdarg.h>
#include <stdio.h>

int vs_err_set(struct vs_err *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}
