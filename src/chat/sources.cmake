# chat: the chat-template engine (a Jinja subset) and its public API (include/msbnb/chat.h).
list(APPEND MSBNB_SRC
  src/chat/tpl_lex.c
  src/chat/tpl_parse.c
  src/chat/tpl_value.c
  src/chat/tpl_eval.c
  src/chat/tpl_builtins.c
  src/chat/tpl_strings.c
  src/chat/chat.c
)
