/* cli_convert.c — checkpoint commands (owned by the files/converter work). */
#include <stdio.h>

#include "cli.h"

static int unavailable(const char *name) {
    fprintf(stderr, "msbnb %s: this command is not in this build yet\n", name);
    return 1;
}
int cmd_quantize(int argc, char **argv) { (void)argc; (void)argv; return unavailable("quantize"); }
int cmd_inspect(int argc, char **argv) { (void)argc; (void)argv; return unavailable("inspect"); }
int cmd_dequantize(int argc, char **argv) { (void)argc; (void)argv; return unavailable("dequantize"); }
int cmd_compare(int argc, char **argv) { (void)argc; (void)argv; return unavailable("compare"); }
