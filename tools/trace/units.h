/* Quantities as users read them in reports: times here, byte sizes in common/size.h (included,
 * since reports print both). */
#ifndef VS_TRACE_UNITS_H
#define VS_TRACE_UNITS_H

#include <stddef.h>

#include "common/size.h"

/* Writes seconds with a unit that keeps three significant decimals readable: "1.234 s",
 * "12.345 ms", "5.000 us". */
const char *vs_seconds_format(double seconds, char *buf, size_t len);

#endif
