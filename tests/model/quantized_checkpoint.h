/* quantized_checkpoint.h — test helper: a copy of an HF checkpoint with every projection
 * quantized with qc and stored in the bitsandbytes layout (io.h msbnb_bnb_write), the other
 * tensors copied as they are. Writes st_path (model.safetensors); config.json is the caller's. */
#ifndef MSBNB_TESTS_QUANTIZED_CHECKPOINT_H
#define MSBNB_TESTS_QUANTIZED_CHECKPOINT_H

#include <stdlib.h>
#include <string.h>

#include <msbnb/io.h>
#include <msbnb/quant.h>

#include "test.h"

static void write_quantized_checkpoint(const char *src_dir, const char *st_path, const msbnb_quant_config *qc) {
    msbnb_checkpoint *ck = NULL;
    msbnb_st_writer *w = NULL;
    CHECK_OK(msbnb_checkpoint_open(src_dir, &ck));
    CHECK_OK(msbnb_st_writer_create(st_path, &w));
    for (size_t i = 0; ck && w && i < msbnb_checkpoint_count(ck); i++) {
        msbnb_tensor_info t;
        CHECK_OK(msbnb_checkpoint_get(ck, i, &t));
        if (t.ndim == 2 && strstr(t.name, "_proj.weight")) {
            float *f = (float *)malloc(sizeof(float) * (size_t)t.numel);
            msbnb_qtensor *q = NULL;
            CHECK_OK(msbnb_tensor_to_f32(&t, f));
            CHECK_OK(msbnb_quantize(f, t.shape[0], t.shape[1], qc, &q));
            CHECK_OK(msbnb_bnb_write(w, t.name, q, MSBNB_DTYPE_F32));
            msbnb_qtensor_free(q);
            free(f);
        } else {
            CHECK_OK(msbnb_st_writer_add(w, t.name, t.dtype, t.ndim, t.shape, t.data, t.nbytes));
        }
    }
    if (w) CHECK_OK(msbnb_st_writer_finish(w));
    msbnb_st_writer_free(w);
    msbnb_checkpoint_close(ck);
}

#endif
