/* status.c — status strings, the thread-local error message, version, size checks. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[512] = "no error";

unsigned msbnb_version_number(void) { return MSBNB_VERSION_NUMBER; }
const char *msbnb_version_string(void) { return MSBNB_VERSION_STRING; }

const char *msbnb_status_str(msbnb_status st) {
    switch (st) {
    case MSBNB_OK: return "ok";
    case MSBNB_ERR_INVALID_ARG: return "invalid argument";
    case MSBNB_ERR_OUT_OF_MEMORY: return "out of memory";
    case MSBNB_ERR_IO: return "I/O error";
    case MSBNB_ERR_FORMAT: return "malformed data";
    case MSBNB_ERR_SHAPE: return "shape mismatch";
    case MSBNB_ERR_UNSUPPORTED: return "unsupported";
    case MSBNB_ERR_NUMERIC: return "non-finite value";
    case MSBNB_ERR_NOT_FOUND: return "not found";
    case MSBNB_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *msbnb_last_error(void) { return last_error; }

msbnb_status msbnb__fail(msbnb_status st, const char *func, const char *fmt, ...) {
    /* The message starts with the failing function's name only when that is a public API function
     * (msbnb_*): internal helpers (msbnb__*, file-local functions) mean nothing to a user. */
    int pub = func && !strncmp(func, "msbnb_", 6) && func[6] != '_';
    int k = pub ? snprintf(last_error, sizeof last_error, "%s: ", func) : 0;
    if (k < 0 || (size_t)k >= sizeof last_error) k = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error + k, sizeof last_error - (size_t)k, fmt, ap);
    va_end(ap);
    return st;
}

bool msbnb__mul_ok(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return false;
    *out = a * b;
    return true;
}

msbnb_status msbnb__checked_mul(int64_t a, int64_t b, size_t *out) {
    RETURN_IF(a < 0 || b < 0, MSBNB_ERR_INVALID_ARG, "negative size %lld x %lld", (long long)a, (long long)b);
    RETURN_IF(!msbnb__mul_ok((size_t)a, (size_t)b, out), MSBNB_ERR_OUT_OF_MEMORY,
              "size %lld x %lld overflows", (long long)a, (long long)b);
    return MSBNB_OK;
}

