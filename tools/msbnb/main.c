/* main.c — `msbnb COMMAND ...`: dispatch to the subcommands in cli.h. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msbnb/msbnb.h>

#include "cli.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"quantize", cmd_quantize, "quantize a safetensors checkpoint (nf4, fp4, int4, int8)"},
    {"inspect", cmd_inspect, "list tensors, dtypes, shapes and quantization of a checkpoint"},
    {"dequantize", cmd_dequantize, "turn a quantized checkpoint back into plain weights"},
    {"compare", cmd_compare, "per-tensor error statistics between two checkpoints"},
    {"generate", cmd_generate, "generate text with a LLaMA model (+ LoRA adapters)"},
    {"chat", cmd_chat, "chat with a model through its own chat template"},
    {"perplexity", cmd_perplexity, "perplexity of a model over a text file"},
    {"finetune", cmd_finetune, "QLoRA fine-tuning on a text file, saves a PEFT adapter"},
    {"merge", cmd_merge, "fold a LoRA adapter into a standalone checkpoint"},
    {"tokenize", cmd_tokenize, "ids of a text (or text of ids) with a model's tokenizer"},
};

static void usage(FILE *f) {
    fprintf(f, "msbnb %s — k-bit quantization and QLoRA fine-tuning\n\nusage: msbnb COMMAND [ARGS]\n\ncommands:\n",
            msbnb_version_string());
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`msbnb COMMAND --help` for a command's options. Exit codes: 0 ok, 1 failure, 2 usage.\n"
               "Environment: MSBNB_THREADS (thread count), MSBNB_ISA (scalar|avx2|avx512|avx512_vnni|avx512_bf16).\n");
}

int main(int argc, char **argv) {
    /* msbnb parallelises with OpenMP and calls OpenBLAS single-threaded, but OpenBLAS starts its
     * own worker threads when the library loads, each mapping a ~128 MB buffer and retrying
     * forever when that fails (under ulimit -v the process then hangs, even at exit). Without an
     * explicit OPENBLAS_NUM_THREADS, run again with 1 so no such thread exists. */
    if (!getenv("OPENBLAS_NUM_THREADS") && !getenv("MSBNB_CLI_REEXEC")) {
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        setenv("MSBNB_CLI_REEXEC", "1", 1); /* exec once, even if the variable is dropped */
        execv("/proc/self/exe", argv);                /* on failure, carry on as before */
    }
    if (argc < 2) {
        fprintf(stderr, "msbnb: missing COMMAND (see `msbnb --help`)\n");
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("msbnb %s\n", msbnb_version_string());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "msbnb: unknown command '%s' (see `msbnb --help`)\n", argv[1]);
    return 2;
}
