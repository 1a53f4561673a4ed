/*
 * kernels_internal.h — entry points shared inside kernels/: msbnb_matmul (matmul.c) routes by
 * weight type to the family implementations below.
 */
#ifndef MSBNB_KERNELS_INTERNAL_H
#define MSBNB_KERNELS_INTERNAL_H

#include <msbnb/kernels.h>

#include "quant/qtensor_internal.h"

/* INT8 weights (symmetric or asymmetric, per row or per tensor), implemented in the int8 family
 * files. Same contract as msbnb_matmul / msbnb_matmul_t; arguments already validated. */
msbnb_status msbnb__matmul_int8(const msbnb_qtensor *W, const float *X, int64_t n, const float *bias, float *Y,
                                msbnb_precision precision);
msbnb_status msbnb__matmul_int8_t(const msbnb_qtensor *W, const float *dY, int64_t n, float *dX, int accumulate);

#endif
