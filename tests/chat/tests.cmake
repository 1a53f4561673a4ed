# chat: the template engine against transformers' renders (../shared/tokenizers/*/chat_vectors.json),
# jinja2's renders of each construct (tests/chat/data), hostile templates, API manners.
msbnb_add_test(test_chat_template tests/chat/test_chat_template.c)
# The chat-template fuzz corpus replayed without libFuzzer (tests/fuzz/fuzz_targets_chat.c).
msbnb_add_test(test_chat_fuzz_replay tests/chat/test_chat_fuzz_replay.c tests/fuzz/fuzz_targets_chat.c)
target_include_directories(test_chat_fuzz_replay PRIVATE ${CMAKE_SOURCE_DIR}/tests/fuzz)
