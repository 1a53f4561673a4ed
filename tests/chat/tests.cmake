# chat: the template engine against transformers' renders (../shared/tokenizers/*/chat_vectors.json),
# jinja2's renders of each construct (tests/chat/data), hostile templates, API manners.
msbnb_add_test(test_chat_template tests/chat/test_chat_template.c)
