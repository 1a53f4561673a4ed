/* cli_train.c — training commands (owned by the model training work). */
#include <stdio.h>

#include "cli.h"

static int unavailable(const char *name) {
    fprintf(stderr, "msbnb %s: this command is not in this build yet\n", name);
    return 1;
}
int cmd_finetune(int argc, char **argv) { (void)argc; (void)argv; return unavailable("finetune"); }
int cmd_merge(int argc, char **argv) { (void)argc; (void)argv; return unavailable("merge"); }
