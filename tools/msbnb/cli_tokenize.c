/*
 * cli_tokenize.c — `msbnb tokenize MODEL_OR_TOKENIZER [--text T | FILE] [--special] [--decode] [--json]`:
 * the ids of a text (one "ID<TAB>'piece'" line per token, or a JSON object), or, with --decode, the
 * text of ids. For debugging prompts, as llama.cpp's tokenize tool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <msbnb/tokenizer.h>

#include "cli.h"
#include "cli_opts.h"

static void usage(FILE *f) {
    fprintf(f, "usage: msbnb tokenize MODEL_OR_TOKENIZER [--text T | FILE] [--special] [--decode] [--json]\n"
               "  MODEL_OR_TOKENIZER  a model directory (its tokenizer.json, tokenizer.model or llama2.c\n"
               "                      tokenizer), a model file (the tokenizer beside it), or a tokenizer file\n"
               "  --text T            the input (else FILE, or standard input for '-' or nothing)\n"
               "  --special           add the tokenizer's special tokens (BOS / EOS, as HF add_special_tokens)\n"
               "  --split-special     special tokens written in the text are plain text\n"
               "  --decode            the input is ids (separated by spaces, commas or newlines; a JSON list\n"
               "                      works): print their text\n"
               "  --json              {\"ids\": [...], \"tokens\": [...]} (encode) or {\"text\": ...} (decode)\n"
               "Without --json, encoding prints one line per token: the id, a tab and the token's text.\n");
}

/* The whole input: --text, FILE or standard input. */
static char *read_input(const char *text, const char *file, size_t *len) {
    if (text) {
        *len = strlen(text);
        char *s = (char *)malloc(*len + 1);
        if (s) memcpy(s, text, *len + 1);
        return s;
    }
    FILE *f = (!file || !strcmp(file, "-")) ? stdin : fopen(file, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *s = (char *)malloc(cap);
    while (s) {
        size_t got = fread(s + n, 1, cap - n - 1, f);
        n += got;
        if (n + 1 < cap) break;
        char *t = (char *)realloc(s, cap * 2);
        if (!t) {
            free(s);
            s = NULL;
            break;
        }
        s = t;
        cap *= 2;
    }
    int err = ferror(f);
    if (f != stdin) fclose(f);
    if (!s || err) {
        free(s);
        return NULL;
    }
    s[n] = '\0';
    *len = n;
    return s;
}

/* Bytes as a JSON string body (quotes not included). */
static void json_escape(FILE *f, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
}

/* Length of the well-formed UTF-8 sequence at s[0..n) (2..4), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    size_t len = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : 0;
    if (len == 0 || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return len;
}

/* Bytes for a terminal line: control characters and bytes that are not part of a UTF-8 character
 * (a byte token of a longer character) escaped, the rest as is. */
static void show_escaped(FILE *f, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t l = c >= 0x80 ? utf8_seq(u + i, n - i) : 1;
        if (c == '\n') fputs("\\n", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\\') fputs("\\\\", f);
        else if (c < 0x20 || c == 0x7F || l == 0) fprintf(f, "\\x%02x", c);
        else fwrite(u + i, 1, l, f);
        i += l ? l : 1;
    }
}

/* A model directory, a model file (its directory's tokenizer) or a tokenizer file. */
static msbnb_status open_tokenizer(const char *path, msbnb_tokenizer **tok) {
    struct stat sb;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(path);
    int is_tok_file = stat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
                      ((n > 5 && !strcmp(path + n - 5, ".json")) || (n > 6 && !strcmp(path + n - 6, ".model")) ||
                       strstr(base, "tok") != NULL);
    if (is_tok_file || (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))) return msbnb_tokenizer_load(path, 0, tok);
    char file[4096];
    msbnb_status st = msbnb_tokenizer_find(path, file, sizeof file);
    if (st != MSBNB_OK) return st;
    return msbnb_tokenizer_load(file, 0, tok);
}

static int parse_ids(const char *s, int32_t **ids, size_t *n, int vocab) {
    size_t cap = 64;
    *n = 0;
    *ids = (int32_t *)malloc(cap * sizeof(int32_t));
    if (!*ids) return 0;
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\n' || *p == '\r' || *p == '\t' || *p == '[' || *p == ']') p++;
        if (!*p) return 1;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v >= vocab) {
            fprintf(stderr, "msbnb tokenize: '%.20s' is not an id of this tokenizer (0..%d)\n", p, vocab - 1);
            return 0;
        }
        if (*n == cap) {
            cap *= 2;
            int32_t *q = (int32_t *)realloc(*ids, cap * sizeof(int32_t));
            if (!q) return 0;
            *ids = q;
        }
        (*ids)[(*n)++] = (int32_t)v;
        p = end;
    }
}

int cmd_tokenize(int argc, char **argv) {
    const char *pos[2] = {0}, *text = NULL;
    bool special = false, split_special = false, decode = false, json = false;
    cli_args a;
    cli_args_begin(&a, "tokenize", argc, argv);
    while (cli_args_next(&a)) {
        if (cli_is_help(&a)) {
            usage(stdout);
            return EXIT_OK;
        }
        (void)(cli_str(&a, "--text", &text) || cli_flag(&a, "--special", &special) ||
               cli_flag(&a, "--split-special", &split_special) || cli_flag(&a, "--decode", &decode) ||
               cli_flag(&a, "--json", &json) || cli_positional(&a, pos, 2));
    }
    if (a.failed) return EXIT_USAGE;
    if (!pos[0]) return cli_args_error(&a, "needs MODEL_OR_TOKENIZER");
    if (text && pos[1]) return cli_args_error(&a, "give --text or FILE, not both");

    msbnb_tokenizer *tok = NULL;
    if (open_tokenizer(pos[0], &tok) != MSBNB_OK) {
        fprintf(stderr, "msbnb tokenize: %s\n", msbnb_last_error());
        return EXIT_FAIL;
    }
    size_t len = 0;
    char *in = read_input(text, pos[1], &len);
    int rc = EXIT_OK;
    if (!in) {
        fprintf(stderr, "msbnb tokenize: cannot read %s\n", pos[1] ? pos[1] : "standard input");
        rc = EXIT_FAIL;
    } else if (decode) {
        int32_t *ids = NULL;
        size_t n = 0;
        char *out = NULL;
        size_t olen = 0;
        if (!parse_ids(in, &ids, &n, msbnb_tokenizer_vocab_size(tok))) {
            rc = EXIT_FAIL;
        } else if (msbnb_tokenizer_decode_alloc(tok, ids, n, 0, &out, &olen) != MSBNB_OK) {
            fprintf(stderr, "msbnb tokenize: %s\n", msbnb_last_error());
            rc = EXIT_FAIL;
        } else if (json) {
            fputs("{\"text\": \"", stdout);
            json_escape(stdout, out, olen);
            fputs("\"}\n", stdout);
        } else {
            fwrite(out, 1, olen, stdout);
            fputc('\n', stdout);
        }
        free(ids);
        free(out);
    } else {
        unsigned flags = (special ? MSBNB_ENCODE_ADD_SPECIAL : 0u) | (split_special ? MSBNB_ENCODE_SPLIT_SPECIAL : 0u);
        int32_t *ids = NULL;
        size_t n = 0;
        if (msbnb_tokenizer_encode_alloc(tok, in, len, flags, &ids, &n) != MSBNB_OK) {
            fprintf(stderr, "msbnb tokenize: %s\n", msbnb_last_error());
            rc = EXIT_FAIL;
        } else if (json) {
            fputs("{\"ids\": [", stdout);
            for (size_t i = 0; i < n; i++) printf("%s%d", i ? ", " : "", ids[i]);
            fputs("], \"tokens\": [", stdout);
            for (size_t i = 0; i < n; i++) {
                size_t tl = 0;
                const char *t = msbnb_tokenizer_id_to_token(tok, ids[i], &tl);
                fputs(i ? ", \"" : "\"", stdout);
                json_escape(stdout, t ? t : "", t ? tl : 0);
                fputc('"', stdout);
            }
            fputs("]}\n", stdout);
        } else {
            /* each token's own text: the bytes it decodes to (a byte token of a longer character
             * shows as its escaped byte) */
            for (size_t i = 0; i < n; i++) {
                const char *piece;
                size_t pl;
                printf("%6d\t'", ids[i]);
                if (msbnb_tokenizer_decode(tok, -1, ids[i], &piece, &pl) == MSBNB_OK) show_escaped(stdout, piece, pl);
                fputs("'\n", stdout);
            }
        }
        free(ids);
    }
    free(in);
    msbnb_tokenizer_free(tok);
    return rc;
}
