/* train_compute.c — the training compute option (train.h, msbnb_compute): names, and the choice
 * of the base products' precision that msbnb_trainer_create makes once. */
#include <string.h>

#include "model/train_internal.h"

static const char *const names[] = {"auto", "fp32", "bf16"};

const char *msbnb_compute_name(msbnb_compute c) {
    return (int)c >= 0 && (int)c < 3 ? names[c] : NULL;
}

msbnb_status msbnb_compute_parse(const char *name, msbnb_compute *out) {
    RETURN_IF(!name || !out, MSBNB_ERR_INVALID_ARG, "NULL argument");
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, names[i])) {
            *out = (msbnb_compute)i;
            return MSBNB_OK;
        }
    return MSBNB_FAIL(MSBNB_ERR_INVALID_ARG, "unknown compute '%s' (auto, fp32, bf16)", name);
}

/* Resolves AUTO in *c (BF16 where the CPU has native bf16 dot products, else FP32). */
msbnb_status msbnb__train_compute_resolve(msbnb_compute *c) {
    RETURN_IF((int)*c < 0 || (int)*c > 2, MSBNB_ERR_INVALID_ARG, "compute %d is not AUTO, FP32 or BF16", (int)*c);
    if (*c == MSBNB_COMPUTE_AUTO) *c = msbnb_bf16_native() ? MSBNB_COMPUTE_BF16 : MSBNB_COMPUTE_FP32;
    return MSBNB_OK;
}

msbnb_compute msbnb_trainer_compute(const msbnb_trainer *tr) { return tr ? tr->p.compute : MSBNB_COMPUTE_AUTO; }
