/* Error reporting for the decoder: a fixed buffer filled once with a complete, user-facing
 * message (file, tensor or option named). Functions return 0 on success and -1 after filling
 * the buffer; callers pass it up unchanged so the first, most precise message survives. */
#ifndef VS_KERNELS_ERROR_H
#define VS_KERNELS_ERROR_H

#define VS_ERR_LEN 768

struct vs_err {
    char msg[VS_ERR_LEN];
};

/* Fills err (if not NULL) with the formatted message and returns -1. */
int vs_err_set(struct vs_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
