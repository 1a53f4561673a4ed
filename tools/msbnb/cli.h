/* cli.h — subcommands of the msbnb tool. Each returns the process exit code (see README
 * "Exit codes": 0 ok, 1 runtime failure, 2 usage error) and prints its own --help. */
#ifndef MSBNB_CLI_H
#define MSBNB_CLI_H

#include <msbnb/msbnb.h>

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

/* cli_chat.c: conversations through the model's chat template */
int cmd_chat(int argc, char **argv);

/* cli_model.c's model options and loading, shared with cli_chat.c. */
#include <stdbool.h>
#include <msbnb/chat.h>
#include <msbnb/model.h>
#include "cli_opts.h"
typedef struct cli_model_opts cli_model_opts;
cli_model_opts *cli_model_opts_create(void); /* defaults; NULL when out of memory */
void cli_model_opts_free(cli_model_opts *o);
bool cli_model_option(cli_model_opts *o, cli_args *a); /* --quant, --tokenizer, --ctx, ... */
const char *cli_model_options_help(void);
/* Load model and tokenizer, print the model line; prints the error and returns 1 on failure. */
int cli_model_open(cli_model_opts *o, const char *model, const char *cmd, msbnb_model **m, msbnb_tokenizer **tok);

/* cli_chat.c, for `generate --chat`: the chat template of MODEL (or template_file) rendered over
 * [system,] user with the generation prompt, as ids for tok. *ids malloc'ed (caller frees). Prints
 * the error and returns 1 on failure. */
int cli_chat_prompt_ids(const char *model, const char *template_file, const char *system, const char *user,
                        const msbnb_tokenizer *tok, const char *cmd, int32_t **ids, int *n);

#endif
