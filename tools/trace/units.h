/* Byte sizes as users write and read them: "24GiB", "512MiB", "4096" in; "1.50 GiB" out. */
#ifndef VS_TRACE_UNITS_H
#define VS_TRACE_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Parses a decimal count with an optional unit (B, KiB, MiB, GiB, TiB; K/M/G/T and KB/MB/GB/TB
 * are read as the binary units, as nvidia-smi users expect). Returns 0, or -1 when the text is
 * not a size or overflows 64 bits. */
int vs_size_parse(const char *text, uint64_t *out);

/* Writes bytes with the largest binary unit that keeps the number >= 1 ("512.0 MiB"). */
const char *vs_size_format(uint64_t bytes, char *buf, size_t len);

#endif
