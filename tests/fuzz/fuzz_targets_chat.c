/* fuzz_targets_chat.c — body of the chat-template fuzz target (see fuzz_targets_chat.h). */
#include "fuzz_targets_chat.h"

#include <stdlib.h>
#include <string.h>

#include <msbnb/chat.h>

/* A harness-detected contract violation: stop loudly so libFuzzer records the input. */
static void require(int ok) {
    if (!ok) abort();
}

msbnb_status fuzz_one_chat_template(const uint8_t *data, size_t size) {
    static const msbnb_chat_message msgs[] = {{"system", "Be brief."},
                                              {"user", "Hi \xc3\xa9\xe2\x82\xac"},
                                              {"assistant", "Hello!"},
                                              {"user", "{{ not a template }}"}};
    msbnb_chat_template *t = NULL;
    msbnb_status st = msbnb_chat_template_compile((const char *)data, size, &t);
    if (st != MSBNB_OK) {
        require(t == NULL && !strchr(msbnb_last_error(), '\n'));
        return st;
    }
    msbnb_chat_render_params p = msbnb_chat_render_params_default();
    p.bos_token = "<s>";
    p.eos_token = "</s>";
    /* Limits far below the library's defaults but well above what a real template needs for four
     * messages (the shared templates render in under 2,000 steps and 200 KB): mutants that only
     * grind up to a limit then cost milliseconds, not tens of them, so the campaign's executions
     * go to new shapes of input while every limit's error path is still reached. */
    p.max_output = 16 << 10;
    p.max_memory = 2 << 20;
    p.max_steps = 20000;
    msbnb_status first = MSBNB_OK;
    for (int agp = 1; agp >= 0; agp--) {
        p.add_generation_prompt = agp;
        char *out = (char *)1;
        size_t len = (size_t)-1;
        st = msbnb_chat_template_render(t, msgs, sizeof msgs / sizeof msgs[0], &p, &out, &len);
        if (st == MSBNB_OK) {
            require(out != NULL && len <= p.max_output && out[len] == 0);
        } else {
            require(out == NULL && len == 0 && !strchr(msbnb_last_error(), '\n'));
            if (first == MSBNB_OK) first = st;
        }
        free(out);
    }
    msbnb_chat_template_free(t);
    return first;
}
