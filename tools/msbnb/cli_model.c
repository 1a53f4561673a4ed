/* cli_model.c — model commands (owned by the model work). */
#include <stdio.h>

#include "cli.h"

static int unavailable(const char *name) {
    fprintf(stderr, "msbnb %s: this command is not in this build yet\n", name);
    return 1;
}
int cmd_generate(int argc, char **argv) { (void)argc; (void)argv; return unavailable("generate"); }
int cmd_perplexity(int argc, char **argv) { (void)argc; (void)argv; return unavailable("perplexity"); }
int cmd_finetune(int argc, char **argv) { (void)argc; (void)argv; return unavailable("finetune"); }
int cmd_merge(int argc, char **argv) { (void)argc; (void)argv; return unavailable("merge"); }
