#!/usr/bin/env python3
"""Cross-check the tokenizer engine on tokenizer.json variants the six fixtures don't cover, against
the HF tokenizers library itself (run with the interop venv: ~/.cache/msbnb-venv/bin/python).

Each variant is a fixture of ../shared/tokenizers with its pipeline edited (a Qwen2-style NFC +
single-digit regex, Metaspace pre-tokenizers with prepend_scheme first / always and split, a
prefix space, Lowercase + Digits, added tokens with single_word / lstrip / rstrip / normalized).
The script writes DIR/<variant>/{tokenizer.json, tokenizer_config.json, vectors.json} with the ids
HF tokenizers gives, in the fixtures' format; then the C test checks them without Python:

    python tests/tokenizer/make_variant_vectors.py /tmp/tokvar
    for d in /tmp/tokvar/*/; do MSBNB_TOKENIZER_DIR=$d build/tests/test_hf_tokenizers; done
"""
import copy
import json
import os
import sys

from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "..", "shared", "tokenizers")
QWEN2_RE = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
            "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
EXTRA = ["hello world hello", "Hello<|sep|>world  <|sep|>  end", "ahello hello_ hello. HELLO 12345 x1y22",
         "  leading and trailing  ", "unicode: Ω≈ç√∫ ﬁ Ａ Ｂ 𝔘𝔫𝔦", "\u1100\u1161\u11a8 e\u0301 a\u030a"]


def load(name):
    with open(os.path.join(SHARED, name, "tokenizer.json"), encoding="utf-8") as f:
        return json.load(f)


def texts(name):
    with open(os.path.join(SHARED, name, "vectors.json"), encoding="utf-8") as f:
        return [e["text"] for e in json.load(f)] + EXTRA


def add_tokens(t, specs):
    n = max(max(t["model"]["vocab"].values()), max((a["id"] for a in t["added_tokens"]), default=0)) + 1
    for i, s in enumerate(specs):
        a = {"id": n + i, "content": s[0], "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": False}
        a.update(s[1])
        t["added_tokens"].append(a)


def variants():
    t = load("llama-bpe")
    t["normalizer"] = {"type": "NFC"}
    t["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = QWEN2_RE
    t["post_processor"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    t["model"]["ignore_merges"] = False
    yield "qwen2-like", "llama-bpe", t, {"add_bos_token": False}

    t = load("llama-spm")
    t["normalizer"] = None
    t["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
    t["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
    yield "metaspace-first", "llama-spm", t, {}

    t = load("mistral-v1")
    t["normalizer"] = None
    t["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    add_tokens(t, [("hello", {"single_word": True, "normalized": True}), ("<|sep|>", {"lstrip": True, "rstrip": True,
                                                                                     "special": True})])
    yield "metaspace-always-split", "mistral-v1", t, {}

    t = load("gpt-2")
    t["pre_tokenizer"]["add_prefix_space"] = True
    t["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"}]}
    add_tokens(t, [("hello", {"single_word": True}), ("<|sep|>", {"lstrip": True, "special": True}),
                   (" world", {"normalized": True})])
    yield "gpt2-prefix-lower", "gpt-2", t, {}

    t = load("gpt-2")
    t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithNext", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    yield "digits-mergednext", "gpt-2", t, {}

    t = load("gpt-2")
    t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "MergedWithPrevious", "invert": False},
        {"type": "Split", "pattern": {"Regex": "\\p{P}"}, "behavior": "Contiguous", "invert": False},
        {"type": "Split", "pattern": {"Regex": "[aeiou]"}, "behavior": "Removed", "invert": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    yield "split-behaviours", "gpt-2", t, {}


def main():
    out = sys.argv[1]
    for name, base, tj, cfg_extra in variants():
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False)
        # the library re-assigns added tokens' ids on load (a content already in the vocab keeps
        # its vocab id): write back the ids it uses, so the file says what HF does
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        for a in tj["added_tokens"]:
            a["id"] = tok.token_to_id(a["content"])
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False)
        with open(os.path.join(SHARED, base, "tokenizer_config.json"), encoding="utf-8") as f:
            cfg = json.load(f)
        cfg.pop("chat_template", None)
        cfg.update(cfg_extra)
        with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(cfg, f, ensure_ascii=False)
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        vec = []
        for s in texts(base):
            ids = tok.encode(s, add_special_tokens=False).ids
            with_special = tok.encode(s, add_special_tokens=True).ids
            if cfg_extra.get("add_bos_token") is False:
                with_special = ids
            vec.append({"text": s, "ids": ids, "ids_with_special": with_special,
                        "decoded": tok.decode(ids, skip_special_tokens=False)})
        with open(os.path.join(d, "vectors.json"), "w", encoding="utf-8") as f:
            json.dump(vec, f, ensure_ascii=False)
        print(d, len(vec))


if __name__ == "__main__":
    main()
