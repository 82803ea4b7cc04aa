/* Byte sizes in policy files: a decimal number, optionally fractional, and an optional binary
 * unit: "2GiB", "1.5 GiB", "512MiB", "64KiB", "4096B", "4096". Units are B, KiB, MiB, GiB, TiB
 * (case-insensitive); decimal units (KB, MB, GB) are refused, since 1 GB != 1 GiB. Fractions
 * are rounded down to a whole byte. */
#ifndef VS_POLICY_SIZE_H
#define VS_POLICY_SIZE_H

#include <stdint.h>

enum vs_size_status { VS_SIZE_OK = 0, VS_SIZE_BAD = -1, VS_SIZE_TOO_LARGE = -2 };

/* Parses text (leading/trailing blanks allowed). *out is set only on VS_SIZE_OK. */
enum vs_size_status vs_policy_size_parse(const char *text, uint64_t *out);

/* Durations: a number, optionally fractional, and a unit, ms, s, min or h (case-insensitive;
 * required, since a bare "5" could mean seconds or milliseconds): "5s", "1.5s", "250ms".
 * *ms (milliseconds, fractions rounded down) is set only on VS_SIZE_OK. */
enum vs_size_status vs_policy_duration_parse(const char *text, uint64_t *ms);

#endif
