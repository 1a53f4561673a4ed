/*
 * optim_internal.h — the layout of msbnb_optim, shared by optim.c (registration, schedule,
 * clipping, save/load), adamw.c (fp32 moments) and adamw8bit.c (8-bit blockwise moments).
 */
#ifndef MSBNB_NN_OPTIM_INTERNAL_H
#define MSBNB_NN_OPTIM_INTERNAL_H

#include <msbnb/optim.h>

#include "core/internal.h"

#define MSBNB_OPTIM_NAME_MAX 160

typedef struct optim_tensor {
    char name[MSBNB_OPTIM_NAME_MAX];
    float *data;       /* [n] borrowed                                            */
    float *grad;       /* [n] borrowed                                            */
    size_t n;
    int is8bit;        /* 8-bit moments (else fp32)                               */
    float *m, *v;      /* fp32 moments [n] (when !is8bit)                          */
    uint8_t *qm, *qv;  /* 8-bit codes [n]: m into the signed map, v the unsigned  */
    float *am, *av;    /* absmax per block [n_blocks]                              */
    size_t n_blocks;   /* ceil(n / blocksize)                                      */
} optim_tensor;

struct msbnb_optim {
    msbnb_optim_type type;
    msbnb_adamw_params p;
    optim_tensor *t;
    int n_tensors, cap;
    int64_t step;
};

/* The scalars of one step, shared by both update kernels. */
typedef struct adam_step_consts {
    float lr;          /* scheduled learning rate                                  */
    float beta1, beta2, eps, weight_decay;
    float c2;          /* √(1 − β₂ᵗ)                                               */
    float step_size;   /* lr · √(1 − β₂ᵗ) / (1 − β₁ᵗ)                               */
    float eps_hat;     /* eps · √(1 − β₂ᵗ)                                          */
    float gscale;      /* global-norm clipping factor (1 when off)                 */
} adam_step_consts;

/* fp32 update of one tensor (adamw.c); returns the number of non-finite gradients skipped. */
size_t msbnb__adamw_update_f32(optim_tensor *t, const adam_step_consts *c);
/* 8-bit blockwise update of one tensor (adamw8bit.c). */
msbnb_status msbnb__adamw_update_8bit(optim_tensor *t, int blocksize, const adam_step_consts *c, size_t *nonfinite);
/* Allocate the 8-bit state of t (codes of zero, absmax 0). */
msbnb_status msbnb__adamw8bit_alloc_state(optim_tensor *t, int blocksize);
/* Dequantize t's 8-bit moments into m, v [n]. */
msbnb_status msbnb__adamw8bit_get_moments(const optim_tensor *t, int blocksize, float *m, float *v);

#endif /* MSBNB_NN_OPTIM_INTERNAL_H */
