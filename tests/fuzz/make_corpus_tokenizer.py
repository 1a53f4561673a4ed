#!/usr/bin/env python3
"""Seeds of the tokenizer.json and tokenizer.model fuzz targets (tests/fuzz/corpus/{tokenizer_json,
tokenizer_model}), standard library only; same conventions as make_corpus.py: bad_* must be
rejected with a one-line message, good_* accepted (tests/fuzz/replay.c checks that). The good
seeds are small, hand-built tokenizers covering every step type the engine reads; each bad seed
breaks one rule. Re-run after editing: python3 tests/fuzz/make_corpus_tokenizer.py
"""
import json
import os
import struct

from make_corpus import write

# ---------------------------------------------------------------- tokenizer.json


def byte_level():
    """A tiny GPT-2-style tokenizer: the 256 byte characters, a few merges, an added token."""
    def bchr(b):
        keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
        if b in keep:
            return chr(b)
        return chr(256 + [x for x in range(256) if x not in keep].index(b))
    vocab = {bchr(b): b for b in range(256)}
    merges = [["Ġ", "t"], ["h", "e"], ["Ġt", "he"], ["i", "n"], ["Ġ", "a"]]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    eot = len(vocab)
    return {
        "version": "1.0",
        "added_tokens": [{"id": eot, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "(?i:'s|'t)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
             "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [eot],
                                                                "tokens": ["<|endoftext|>"]}}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": True, "vocab": vocab, "merges": merges},
    }


def spm_style():
    """A tiny SentencePiece-style BPE: byte fallback, unk, Prepend + Replace, added tokens with
    lstrip / rstrip / single_word, the Replace + ByteFallback + Fuse + Strip decoder."""
    pieces = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    pieces += ["▁", "a", "b", "c", "h", "e", "l", "o", "▁h", "he", "ll", "▁he", "▁hell", "▁hello", "lo", "hell"]
    vocab = {p: i for i, p in enumerate(pieces)}
    merges = ["▁ h", "h e", "l l", "▁h e", "▁he ll", "l o", "he ll", "▁hell o"]
    n = len(vocab)
    added = [{"id": 0, "content": "<unk>", "special": True, "normalized": False},
             {"id": 1, "content": "<s>", "special": True, "normalized": False},
             {"id": 2, "content": "</s>", "special": False, "normalized": False, "rstrip": True},
             {"id": n, "content": "<|user|>", "special": True, "normalized": False, "lstrip": True, "rstrip": True},
             {"id": n + 1, "content": "abc", "special": False, "normalized": True, "single_word": True}]
    return {
        "version": "1.0",
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                           {"type": "Replace", "pattern": {"String": " "},
                                                            "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]},
                                              "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": True, "byte_fallback": True,
                  "ignore_merges": False, "vocab": vocab, "merges": merges},
    }


def metaspace():
    """Metaspace pre-tokenizer and decoder (prepend_scheme first), Digits, Whitespace split,
    Lowercase / NFKC / Strip normalizers, Roberta post-processor, null decoder elsewhere."""
    t = spm_style()
    t["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"},
                                                           {"type": "Strip", "strip_left": True, "strip_right": False},
                                                           {"type": "Replace", "pattern": {"Regex": "\\s{2,}"},
                                                            "content": " "}]}
    t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": True}]}
    t["decoder"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": True}
    t["post_processor"] = {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 1]}
    return t


JSON_FILES, MODEL_FILES = {}, {}


def write_json(name, obj):
    JSON_FILES[name] = json.dumps(obj, ensure_ascii=False).encode("utf-8")


def json_corpus():
    write_json("good_byte_level", byte_level())
    write_json("good_spm_style", spm_style())
    write_json("good_metaspace", metaspace())
    t = spm_style()
    t["model"]["merges"] = [m.split(" ") for m in t["model"]["merges"]]  # the [a, b] spelling
    t["decoder"] = None
    t["pre_tokenizer"] = {"type": "WhitespaceSplit"}
    write_json("good_pair_merges_no_decoder", t)

    def bad(name, edit, base=spm_style):
        t = base()
        edit(t)
        write_json("bad_" + name, t)

    JSON_FILES["bad_not_json"] = b"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}"
    JSON_FILES["bad_array"] = b"[1, 2, 3]"
    bad("model_unigram", lambda t: t["model"].update(type="Unigram"))
    bad("no_model", lambda t: t.pop("model"))
    bad("vocab_not_object", lambda t: t["model"].update(vocab=[1, 2]))
    bad("vocab_negative_id", lambda t: t["model"]["vocab"].update(a=-1))
    bad("vocab_fraction_id", lambda t: t["model"]["vocab"].update(a=1.5))
    bad("vocab_huge_id", lambda t: t["model"]["vocab"].update(a=1 << 30))
    bad("vocab_duplicate_id", lambda t: t["model"]["vocab"].update(a=5))
    bad("merge_not_in_vocab", lambda t: t["model"]["merges"].append("x y"))
    bad("merge_three_parts", lambda t: t["model"]["merges"].append("a b c"))
    bad("merge_not_string", lambda t: t["model"]["merges"].append(7))
    bad("merges_not_array", lambda t: t["model"].update(merges="a b"))
    bad("unk_not_in_vocab", lambda t: t["model"].update(unk_token="<nope>"))
    bad("subword_prefix", lambda t: t["model"].update(continuing_subword_prefix="##"))
    bad("added_conflict", lambda t: t["added_tokens"].append({"id": 3, "content": "<zzz>", "special": True}))
    bad("added_no_content", lambda t: t["added_tokens"].append({"id": 500, "special": True}))
    bad("normalizer_unknown", lambda t: t.update(normalizer={"type": "BertNormalizer"}))
    bad("normalizer_no_type", lambda t: t.update(normalizer={"prepend": "x"}))
    bad("replace_no_content", lambda t: t.update(normalizer={"type": "Replace", "pattern": {"String": " "}}))
    bad("regex_invalid", lambda t: t.update(pre_tokenizer={"type": "Split", "pattern": {"Regex": "(\\p{L}+"},
                                                           "behavior": "Isolated", "invert": False}))
    bad("split_behavior", lambda t: t.update(pre_tokenizer={"type": "Split", "pattern": {"String": " "},
                                                            "behavior": "Sideways", "invert": False}))
    bad("pre_unknown", lambda t: t.update(pre_tokenizer={"type": "BertPreTokenizer"}))
    bad("metaspace_scheme", lambda t: t.update(pre_tokenizer={"type": "Metaspace", "prepend_scheme": "sometimes"}))
    bad("metaspace_two_chars", lambda t: t.update(pre_tokenizer={"type": "Metaspace", "replacement": "ab"}))
    bad("decoder_unknown", lambda t: t.update(decoder={"type": "WordPiece"}))
    bad("decoder_strip_negative", lambda t: t.update(decoder={"type": "Strip", "content": " ", "start": -1, "stop": 0}))
    bad("post_unknown", lambda t: t.update(post_processor={"type": "Magic"}))
    bad("template_no_a", lambda t: t["post_processor"].update(single=[{"SpecialToken": {"id": "<s>"}}]))
    bad("template_missing_special", lambda t: t["post_processor"]["special_tokens"].pop("<s>"))
    bad("template_id_not_token", lambda t: t["post_processor"]["special_tokens"]["<s>"].update(ids=[99999]))

    def deep(t):
        n = {"type": "NFC"}
        for _ in range(12):
            n = {"type": "Sequence", "normalizers": [n]}
        t["normalizer"] = n
    bad("nesting", deep)


# ---------------------------------------------------------------- tokenizer.model (protobuf)


def varint(v):
    if v < 0:
        v += 1 << 64
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wt, payload):
    key = varint(num << 3 | wt)
    if wt == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def piece(text, score, typ=1):
    body = field(1, 2, text.encode("utf-8")) + field(2, 5, struct.pack("<f", score))
    if typ != 1:
        body += field(3, 0, varint(typ))
    return field(1, 2, body)


def model_proto(pieces, model_type=2, byte_fallback=True, extra_trainer=b"", normalizer=None):
    out = b"".join(piece(*p) for p in pieces)
    trainer = field(3, 0, varint(model_type)) + field(35, 0, varint(int(byte_fallback)))
    trainer += field(40, 0, varint(0)) + field(41, 0, varint(1)) + field(42, 0, varint(2)) + field(43, 0, varint(-1))
    out += field(2, 2, trainer + extra_trainer)
    if normalizer is None:
        normalizer = field(1, 2, b"identity") + field(3, 0, varint(1)) + field(4, 0, varint(0)) + field(5, 0, varint(1))
    out += field(3, 2, normalizer)
    return out


def spm_pieces():
    p = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3), ("[INST]", 0.0, 3), ("<ref>", 0.0, 4)]
    p += [("<0x%02X>" % b, 0.0, 6) for b in range(256)]
    words = ["▁", "a", "b", "h", "e", "l", "o", "▁h", "he", "ll", "▁he", "▁hell", "▁hello", "lo", "▁▁"]
    scores = [0.0, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -1e9]
    p += list(zip(words, [float(s) for s in scores]))
    return p


def model_corpus():
    def w(name, data):
        MODEL_FILES[name.replace(".model", "")] = data
    w("good_bpe.model", model_proto(spm_pieces()))
    w("good_no_byte_fallback.model", model_proto(spm_pieces(), byte_fallback=False))
    extra = field(1, 2, b"corpus.txt") + field(7, 2, b"text") + field(99, 1, b"\0" * 8)  # unknown fields skipped
    w("good_extra_fields.model", model_proto(spm_pieces(), extra_trainer=extra))
    ws = field(1, 2, b"nmt_nfkc") + field(2, 2, b"\x01\x02\x03") + field(4, 0, varint(1))
    w("good_nfkc_extra_ws.model", model_proto(spm_pieces(), normalizer=ws))
    good = model_proto(spm_pieces())
    w("bad_unigram.model", model_proto(spm_pieces(), model_type=1))
    w("bad_truncated.model", good[: len(good) // 2])
    w("bad_no_pieces.model", field(2, 2, field(3, 0, varint(2))))
    w("bad_piece_without_text.model", field(1, 2, field(2, 5, struct.pack("<f", 1.0))) + good)
    w("bad_varint_overflow.model", b"\x0a" + b"\xff" * 11)
    w("bad_length_past_end.model", b"\x0a\xff\xff\x03" + good[:40])
    w("bad_group_wire_type.model", good[:20] + bytes([1 << 3 | 3]) + good[20:])
    w("bad_field_zero.model", b"\x02\x00" + good)
    w("bad_empty.model", b"")


if __name__ == "__main__":
    os.chdir(os.path.dirname(os.path.abspath(__file__)))
    json_corpus()
    model_corpus()
    write("tokenizer_json", JSON_FILES, ".json")
    write("tokenizer_model", MODEL_FILES, ".model")
