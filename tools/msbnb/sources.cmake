# The msbnb command-line tool, built on the public API only.
set(MSBNB_CLI_SRC
  tools/msbnb/main.c
  tools/msbnb/cli_chat.c
  tools/msbnb/cli_convert.c
  tools/msbnb/cli_convert_util.c
  tools/msbnb/cli_inspect.c
  tools/msbnb/cli_model.c
  tools/msbnb/cli_opts.c
  tools/msbnb/cli_train.c
  tools/msbnb/cli_train_out.c
  tools/msbnb/cli_train_state.c
  tools/msbnb/cli_tokenize.c
  tools/msbnb/svg_plot.c
)
