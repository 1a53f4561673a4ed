/*
 * lora_logits.c — the logits of a model with a PEFT LoRA adapter, for cross-checks against PEFT
 * (python/test_peft_adapter.py).
 *
 *   lora_logits MODEL ADAPTER_DIR TOKENIZER TEXT OUT_PREFIX [--quant nf4|... --double-quant]
 *
 * Encodes TEXT (with BOS), runs the inference forward (model.h, the adapter applied by the nn
 * layers) and the training forward (train.h) on the same tokens, and writes
 *   OUT_PREFIX.tokens  int32 [n]           the token ids
 *   OUT_PREFIX.logits  float32 [n, vocab]  inference logits, little-endian
 * and prints "tokens N" and "loss_train X": the mean next-token cross-entropy of the same
 * sequence from the training forward (msbnb_trainer_loss), so both forwards are checked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msbnb/train.h>

static int die(const char *what) {
    fprintf(stderr, "lora_logits: %s: %s\n", what, msbnb_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: lora_logits MODEL ADAPTER_DIR TOKENIZER TEXT OUT_PREFIX [--quant T --double-quant]\n");
        return 2;
    }
    msbnb_model_params mp = msbnb_model_params_default();
    for (int i = 6; i < argc; i++) {
        if (!strcmp(argv[i], "--double-quant")) mp.double_quant = 1;
        else if (!strcmp(argv[i], "--quant") && i + 1 < argc && msbnb_qtype_parse(argv[++i], &mp.quant) != MSBNB_OK)
            return die("--quant");
    }
    msbnb_model *m = NULL;
    msbnb_tokenizer *tok = NULL;
    if (msbnb_model_load(argv[1], &mp, &m) != MSBNB_OK) return die(argv[1]);
    if (strcmp(argv[2], "none") && msbnb_model_lora_load(m, argv[2], "default") != MSBNB_OK) return die(argv[2]);
    if (msbnb_tokenizer_load(argv[3], msbnb_model_vocab_size(m), &tok) != MSBNB_OK) return die(argv[3]);
    size_t len = strlen(argv[4]);
    int cap = (int)len + 3, n = 0;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)cap);
    if (!ids || msbnb_tokenizer_encode(tok, argv[4], len, 1, 0, ids, cap, &n) != MSBNB_OK) return die("encode");
    int V = msbnb_model_vocab_size(m);
    float *logits = malloc(sizeof(float) * (size_t)n * (size_t)V);
    if (!logits || msbnb_model_forward(m, ids, n, 0, logits, 1) != MSBNB_OK) return die("forward");

    /* the training forward on the same sequence: one row of n-1 positions, dropout off */
    msbnb_train_params tp = msbnb_train_params_default();
    tp.batch = 1;
    tp.seq_len = n - 1;
    msbnb_trainer *tr = NULL;
    double loss = 0;
    int64_t count = 0;
    if (msbnb_trainer_create(m, &tp, &tr) != MSBNB_OK || msbnb_trainer_loss(tr, ids, &loss, &count) != MSBNB_OK)
        return die("trainer");

    char path[4096];
    snprintf(path, sizeof path, "%s.tokens", argv[5]);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(ids, sizeof(int32_t), (size_t)n, f) != (size_t)n || fclose(f) != 0) return die(path);
    snprintf(path, sizeof path, "%s.logits", argv[5]);
    f = fopen(path, "wb");
    if (!f || fwrite(logits, sizeof(float), (size_t)n * (size_t)V, f) != (size_t)n * (size_t)V || fclose(f) != 0)
        return die(path);
    printf("tokens %d\nloss_train %.9f\n", n, loss);
    msbnb_trainer_free(tr);
    free(logits);
    free(ids);
    msbnb_tokenizer_free(tok);
    msbnb_model_free(m);
    return 0;
}
