/* netframe — compiler helpers every layer uses: symbol export and branch
 * hints. The library is built with hidden visibility; public functions are
 * marked NF__EXPORT where they are defined. */
#ifndef NF_BASE_EXPORT_H
#define NF_BASE_EXPORT_H

#define NF__EXPORT      __attribute__((visibility("default")))
#define NF__LIKELY(x)   __builtin_expect(!!(x), 1)
#define NF__UNLIKELY(x) __builtin_expect(!!(x), 0)

#endif
