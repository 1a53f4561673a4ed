# chat: the template engine against transformers' renders (../shared/tokenizers/*/chat_vectors.json),
# jinja2's renders of each construct (tests/chat/data), hostile templates, API manners.
msbnb_add_test(test_chat_template tests/chat/test_chat_template.c)
# (The chat-template fuzz corpus is replayed with the others by test_io_fuzz_replay.)

# `msbnb chat` and `generate --chat` on stories260K (no template of its own: tests/chat/data/plain.jinja):
# greedy replies, the interactive loop over stdin (/reset), a model directory whose
# tokenizer_config.json holds the template, a model without a template, template errors (exit 1,
# one line), usage errors (exit 2).
set(_m ${MSBNB_SHARED_DIR}/models/stories260K)
set(_d ${PROJECT_SOURCE_DIR}/tests/chat/data)
add_test(NAME cli_chat
  COMMAND sh -c "set -e
    $<TARGET_FILE:msbnb_cli> chat ${_m}/hf --chat-template ${_d}/plain.jinja --prompt 'Once upon a time' --max-new-tokens 20 2>/dev/null | grep -qx ', there was a little girl named Lily. She loved to play outsid'
    $<TARGET_FILE:msbnb_cli> generate ${_m}/hf --chat --chat-template ${_d}/plain.jinja --prompt 'Once upon a time' --max-new-tokens 20 2>/dev/null | grep -qx ', there was a little girl named Lily. She loved to play outsid'
    printf 'Once upon a time\\nThe cat\\n/reset\\nOnce upon a time\\n' | $<TARGET_FILE:msbnb_cli> chat ${_m}/hf --chat-template ${_d}/plain.jinja --max-new-tokens 10 > chat.out 2> chat.err
    test $(grep -c 'there was a little girl' chat.out) = 2
    grep -q 'from the cache' chat.err && grep -q 'conversation cleared' chat.err
    rm -rf chatmodel && mkdir chatmodel && ln -s ${_m}/hf/config.json ${_m}/hf/model.safetensors ${_m}/tok512.bin chatmodel/
    cp ${_d}/plain_tokenizer_config.json chatmodel/tokenizer_config.json
    $<TARGET_FILE:msbnb_cli> chat chatmodel --prompt 'Once upon a time' --max-new-tokens 20 2>/dev/null | grep -qx ', there was a little girl named Lily. She loved to play outsid'
    rc=0; $<TARGET_FILE:msbnb_cli> chat ${_m}/hf --prompt hi 2> chat.err || rc=$?; test $rc = 1; grep -q 'no chat template.*--chat-template' chat.err
    rc=0; $<TARGET_FILE:msbnb_cli> chat ${_m}/hf --chat-template ${_d}/refuses.jinja --prompt hi 2> chat.err || rc=$?; test $rc = 1; grep -q 'refuses every conversation' chat.err
    rc=0; $<TARGET_FILE:msbnb_cli> chat ${_m}/hf --chat-template /nonexistent.jinja --prompt hi 2>/dev/null || rc=$?; test $rc = 1
    rc=0; $<TARGET_FILE:msbnb_cli> chat ${_m}/hf --max-new-tokens x 2>/dev/null || rc=$?; test $rc = 2
    rc=0; $<TARGET_FILE:msbnb_cli> chat 2>/dev/null || rc=$?; test $rc = 2
    rc=0; $<TARGET_FILE:msbnb_cli> generate ${_m}/hf --system x 2>/dev/null || rc=$?; test $rc = 2")
set_tests_properties(cli_chat PROPERTIES ENVIRONMENT "OMP_WAIT_POLICY=passive")
add_dependencies(test_chat_template msbnb_cli)
# The commands on random-weight checkpoints in the HF layout with the real tokenizers (runs msbnb).
msbnb_add_test(test_chat_e2e tests/chat/test_chat_e2e.c)
add_dependencies(test_chat_e2e msbnb_cli)
