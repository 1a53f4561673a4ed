/*
 * chat.h — chat templates: a model's own Jinja `chat_template` turned into the prompt text it was
 * trained on, as transformers' apply_chat_template(messages, tokenize=False) renders it.
 *
 *     msbnb_chat_template *t = NULL;
 *     if (msbnb_chat_template_load("models/Llama-3.2-1B-Instruct", &t) != MSBNB_OK) {
 *         fprintf(stderr, "%s\n", msbnb_last_error());
 *         return 1;
 *     }
 *     msbnb_chat_message msgs[] = {{"system", "You are terse."}, {"user", "Hi!"}};
 *     msbnb_chat_render_params p = msbnb_chat_render_params_default();   // generation prompt on
 *     char *text = NULL;
 *     size_t len = 0;
 *     if (msbnb_chat_template_render(t, msgs, 2, &p, &text, &len) == MSBNB_OK) {
 *         ... tokenize text (special tokens in it are matched as such) ...
 *         free(text);
 *     }
 *     msbnb_chat_template_free(t);
 *
 * The engine implements the subset of Jinja that chat templates use (docs/chat.md lists it):
 * statements if / elif / else, for (loop.*, `if` filter, else, tuple targets), set (including
 * namespace() attributes and the block form), macro, break / continue, generation; expressions
 * with Python semantics (strings, numbers, lists, dicts, slicing, `in`, `is` tests, `~`, the
 * conditional expression, method calls such as .strip() / .startswith() / .items()); the filters
 * and tests of Jinja that templates use, transformers' tojson, raise_exception and strftime_now.
 * Whitespace follows transformers' environment: trim_blocks and lstrip_blocks on, `-` markers.
 * Unknown filters, tests and statements are refused at compile time.
 *
 * Limits: lexing and parsing are linear in the template; rendering is bounded by a step budget,
 * an output size and a working-memory cap (msbnb_chat_render_params), nesting by fixed depths —
 * a hostile template ends with an error, never a hang or a crash.
 *
 * Thread safety: a compiled template is read-only while rendering; several threads may render the
 * same one at once.
 */
#ifndef MSBNB_CHAT_H
#define MSBNB_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include <msbnb/msbnb.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct msbnb_chat_template msbnb_chat_template;

/* One message: role ("system", "user", "assistant", ...) and content, UTF-8, NUL-terminated,
 * borrowed for the call. */
typedef struct msbnb_chat_message {
    const char *role;
    const char *content;
} msbnb_chat_message;

typedef struct msbnb_chat_render_params {
    /* bos_token / eos_token variables. NULL = the template's own (from tokenizer_config.json when
     * loaded with msbnb_chat_template_load), else undefined (renders as ""). */
    const char *bos_token;
    const char *eos_token;
    int add_generation_prompt; /* 1 (default): end with the assistant's turn header */
    /* Further variables as a JSON object (e.g. {"tools": [...], "date_string": "1 Jan 2025"}), or
     * NULL. `tools` and `documents` are none unless given here, as transformers passes them. */
    const char *extra_json;
    size_t max_output;  /* bytes of rendered text; 0 = 16 MiB                         */
    size_t max_memory;  /* working memory of one render; 0 = 256 MiB                   */
    uint64_t max_steps; /* evaluation steps (expressions, statements, loop turns); 0 = 10^7 */
} msbnb_chat_render_params;

msbnb_chat_render_params msbnb_chat_render_params_default(void);

/* Compile template source (UTF-8, len bytes). *out is the caller's to free with
 * msbnb_chat_template_free. Errors (message "line N: ..."): FORMAT (syntax), UNSUPPORTED (a
 * statement, filter or test outside the supported subset), OUT_OF_MEMORY, INVALID_ARG. */
msbnb_status msbnb_chat_template_compile(const char *source, size_t len, msbnb_chat_template **out);

/* The chat template of a model. path: a model directory, a file inside it (model.safetensors,
 * config.json, ...) or a tokenizer_config.json. Reads, in transformers' order, the directory's
 * chat_template.jinja, else tokenizer_config.json's "chat_template" (a string, or a list of
 * {"name", "template"} from which "default" is taken). bos_token / eos_token come from
 * tokenizer_config.json (a string or {"content": ...}). Errors: NOT_FOUND (no template: the
 * message says so), IO, FORMAT, UNSUPPORTED as for compile. */
msbnb_status msbnb_chat_template_load(const char *path, msbnb_chat_template **out);

/* bos_token / eos_token strings known to the template (from tokenizer_config.json), or NULL.
 * Owned by the template. */
const char *msbnb_chat_template_bos_token(const msbnb_chat_template *t);
const char *msbnb_chat_template_eos_token(const msbnb_chat_template *t);

/* Render messages[0..n) with params (NULL = defaults). *text receives a malloc'ed NUL-terminated
 * string (caller frees with free()), *len its length (may be NULL). Errors: INVALID_ARG (NULL
 * arguments, or the template's raise_exception refused the conversation: the message quotes
 * it), FORMAT (a type error while rendering, e.g. adding a string to a number; bad extra_json),
 * OUT_OF_MEMORY (output or memory cap), UNSUPPORTED (step budget exhausted). */
msbnb_status msbnb_chat_template_render(const msbnb_chat_template *t, const msbnb_chat_message *messages, size_t n,
                                        const msbnb_chat_render_params *params, char **text, size_t *len);

/* The same with the messages given as a JSON array of objects (any fields: tool_calls, ...), so
 * templates that look at more than role and content can be fed. */
msbnb_status msbnb_chat_template_render_json(const msbnb_chat_template *t, const char *messages_json, size_t json_len,
                                             const msbnb_chat_render_params *params, char **text, size_t *len);

void msbnb_chat_template_free(msbnb_chat_template *t);

#ifdef __cplusplus
}
#endif
#endif /* MSBNB_CHAT_H */
