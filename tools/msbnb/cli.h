/* cli.h — subcommands of the msbnb tool. Each returns the process exit code (see README
 * "Exit codes": 0 ok, 1 runtime failure, 2 usage error) and prints its own --help. */
#ifndef MSBNB_CLI_H
#define MSBNB_CLI_H

/* cli_convert.c: checkpoints */
int cmd_quantize(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_dequantize(int argc, char **argv);
int cmd_compare(int argc, char **argv);

/* cli_model.c: inference with the reference LLaMA model */
int cmd_generate(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
/* cli_train.c: training */
int cmd_finetune(int argc, char **argv);
int cmd_merge(int argc, char **argv);
/* cli_tokenize.c: tokenizers */
int cmd_tokenize(int argc, char **argv);

#endif
