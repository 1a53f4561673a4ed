/* cli_model.c — inference commands (owned by the model inference work). */
#include <stdio.h>

#include "cli.h"

static int unavailable(const char *name) {
    fprintf(stderr, "msbnb %s: this command is not in this build yet\n", name);
    return 1;
}
int cmd_generate(int argc, char **argv) { (void)argc; (void)argv; return unavailable("generate"); }
int cmd_perplexity(int argc, char **argv) { (void)argc; (void)argv; return unavailable("perplexity"); }
