/* Byte sizes as users read them: "1.50 GiB". Parsing is policy/size.h's, one rule everywhere. */
#ifndef VS_TRACE_UNITS_H
#define VS_TRACE_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Writes bytes with the largest binary unit that keeps the number >= 1 ("512.0 MiB"). */
const char *vs_size_format(uint64_t bytes, char *buf, size_t len);

/* Writes seconds with a unit that keeps three significant decimals readable: "1.234 s",
 * "12.345 ms", "5.000 us". */
const char *vs_seconds_format(double seconds, char *buf, size_t len);

#endif
