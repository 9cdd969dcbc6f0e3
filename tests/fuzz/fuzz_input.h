/* Shared by the libFuzzer targets whose first input byte selects options:
 * the selector, and the rest of the input as an exact-size heap copy, so that
 * ASan sees any read past its end. */
#ifndef NF_FUZZ_INPUT_H
#define NF_FUZZ_INPUT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Takes the selector byte off the input (data, size) into *sel and returns the heap copy
 * of the rest (free it), or NULL for an empty input (nothing to do). */
static inline void *fz_split(const uint8_t **data, size_t *size, unsigned *sel)
{
    if (*size < 1)
        return NULL;
    *sel = (*data)[0];
    (*data)++;
    (*size)--;
    void *buf = malloc(*size ? *size : 1);
    if (buf)
        memcpy(buf, *data, *size);
    return buf;
}

#endif
