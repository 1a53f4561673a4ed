/* json_file.h — the chat tests' JSON fixtures: a whole file parsed with cJSON (test.h reads it). */
#ifndef MSBNB_TESTS_CHAT_JSON_FILE_H
#define MSBNB_TESTS_CHAT_JSON_FILE_H

#include <cjson/cJSON.h>

#include "test.h"

/* The file at path parsed (caller cJSON_Delete()s); NULL if missing or malformed. */
static inline cJSON *parse_json_file(const char *path) {
    size_t len = 0;
    char *text = test_read_file(path, &len);
    cJSON *j = text ? cJSON_ParseWithLength(text, len) : NULL;
    free(text);
    return j;
}

#endif
