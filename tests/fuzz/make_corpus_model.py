#!/usr/bin/env python3
"""Seeds of the fuzz targets for the loaders outside src/io (tests/fuzz/corpus/{llama2c,
tokenizer,optim}), standard library only; the sibling of make_corpus.py, same conventions: bad_*
must be rejected with a one-line message, good_* accepted (tests/fuzz/replay.c checks that).
The layouts the targets expect are in tests/fuzz/fuzz_targets.h (tokenizer: 32 entries;
optimizer: tensors "a" [5] and "b" [130], blocksize 64). Re-run after editing:
python3 tests/fuzz/make_corpus_model.py
"""
import math
import os
import random
import struct
import zlib

from make_corpus import write

TOK_VOCAB = 32
OPT_N_A, OPT_N_B, OPT_BLOCK = 5, 130, 64

# ---------------------------------------------------------------- llama2.c checkpoints


def l2c_floats(dim, hidden, layers, heads, kv_heads, vocab, seq, tied=True):
    """Float count after the header (load_llama2c.c's layout)."""
    head = dim // heads
    qd, kvd = heads * head, kv_heads * head
    n = vocab * dim + layers * dim * 2 + layers * (qd * dim + 2 * kvd * dim + dim * qd)
    n += layers * 3 * hidden * dim + dim + seq * head
    return n + (0 if tied else vocab * dim)


def l2c(dim, hidden, layers, heads, kv_heads, vocab, seq, tied=True, extra=0, n_floats=None, seed=0):
    """Header + small pseudo-random weights; extra adds (or removes, < 0) bytes at the end."""
    rng = random.Random(seed)
    n = n_floats if n_floats is not None else l2c_floats(dim, hidden, layers, heads, kv_heads, vocab, seq, tied)
    body = struct.pack("<%df" % n, *(rng.uniform(-0.1, 0.1) for _ in range(n)))
    v = vocab if tied else -vocab
    out = struct.pack("<7i", dim, hidden, layers, heads, kv_heads, v, seq) + body
    return out + bytes(extra) if extra >= 0 else out[:extra]


def raw_header(*h, body=b""):
    return struct.pack("<7i", *h) + body


TINY = (8, 12, 2, 2, 2, 16, 8)  # dim hidden layers heads kv_heads vocab seq: head 4
LLAMA2C = {
    # ---- must be accepted
    "good_tiny_tied": l2c(*TINY),
    "good_tiny_untied_classifier": l2c(*TINY, tied=False, seed=1),
    "good_gqa_kv_heads_1": l2c(8, 12, 1, 2, 1, 16, 4, seed=2),
    "good_minimal_dims": l2c(2, 1, 1, 1, 1, 1, 1, seed=3),
    "good_non_finite_weights": raw_header(4, 4, 1, 2, 2, 4, 2) +
    struct.pack("<%df" % l2c_floats(4, 4, 1, 2, 2, 4, 2), *([math.inf, -math.inf, math.nan] * 100)[:l2c_floats(4, 4, 1, 2, 2, 4, 2)]),
    # ---- must be rejected: header
    "bad_empty_file": b"",
    "bad_truncated_header": struct.pack("<5i", 8, 12, 2, 2, 2),
    "bad_header_only": raw_header(*TINY),
    "bad_zero_dim": raw_header(0, 12, 2, 2, 2, 16, 8),
    "bad_negative_dim": raw_header(-8, 12, 2, 2, 2, 16, 8),
    "bad_negative_hidden": raw_header(8, -12, 2, 2, 2, 16, 8),
    "bad_zero_layers": raw_header(8, 12, 0, 2, 2, 16, 8),
    "bad_negative_seq_len": raw_header(8, 12, 2, 2, 2, 16, -8),
    "bad_vocab_zero": raw_header(8, 12, 2, 2, 2, 0, 8),
    "bad_vocab_int32_min": raw_header(8, 12, 2, 2, 2, -2**31, 8),
    "bad_huge_dims": raw_header(2**31 - 1, 2**31 - 1, 2**31 - 1, 1, 1, 2**31 - 1, 2**31 - 1),
    "bad_layers_over_limit": raw_header(8, 12, 100000, 2, 2, 16, 8),
    # within each limit but products that overflow 32-bit, and a body far short of them
    "bad_products_overflow_int32": raw_header(65536, 262144, 1024, 1, 1, 2**21, 2**20, body=bytes(64)),
    "bad_heads_not_dividing_dim": raw_header(8, 12, 2, 3, 3, 16, 8),
    "bad_kv_heads_not_dividing_heads": raw_header(12, 12, 1, 3, 2, 16, 8),
    "bad_kv_heads_above_heads": raw_header(8, 12, 1, 2, 4, 16, 8),
    "bad_kv_heads_zero": raw_header(8, 12, 1, 2, 0, 16, 8),
    "bad_odd_head_dim": raw_header(6, 12, 1, 2, 2, 16, 8),
    "bad_heads_above_dim": raw_header(2, 12, 1, 4, 4, 16, 8),
    # ---- must be rejected: file length vs header (trailing bytes are refused too)
    "bad_short_by_one_float": l2c(*TINY, extra=-4),
    "bad_short_by_one_byte": l2c(*TINY, extra=-1),
    "bad_trailing_float": l2c(*TINY, extra=4),
    "bad_trailing_byte": l2c(*TINY, extra=1),
    "bad_untied_missing_classifier": l2c(*TINY, tied=False, n_floats=l2c_floats(*TINY)),
    "bad_tied_with_classifier": l2c(*TINY, n_floats=l2c_floats(*TINY, tied=False)),
}

# ---------------------------------------------------------------- tokenizer


def tok_file(pieces, max_len=None, scores=None, lens=None):
    """int32 max_token_length, then per token float32 score, int32 len, bytes."""
    max_len = max((len(p) for p in pieces), default=1) if max_len is None else max_len
    out = struct.pack("<i", max_len)
    for i, p in enumerate(pieces):
        s = scores[i] if scores else -float(i)
        n = lens[i] if lens and i in lens else len(p)
        out += struct.pack("<fi", s, n) + p
    return out


# 32 entries: specials, byte tokens, single letters, a space, merges, multi-byte UTF-8 pieces.
BASE = [b"<unk>", b"<s>", b"</s>", b"<0x41>", b"<0xC3>", b"<0xFF>", b"<0x80>", b" ", b"a", b"b", b"c", b"e",
        b"h", b"l", b"o", b"w", b"r", b"d", b"t", b"ab", b"abc", b" a", b" abc", b"he", b"ll", b"hell", b"hello",
        b" hello", "é".encode(), "€".encode(), "ét".encode(), b"lo"]
assert len(BASE) == TOK_VOCAB

TOKENIZER = {
    # ---- must be accepted
    "good_tiny_vocab": tok_file(BASE),
    "good_generous_max_len": tok_file(BASE, max_len=64),
    "good_equal_scores": tok_file(BASE, scores=[0.0] * TOK_VOCAB),
    "good_non_utf8_pieces": tok_file(BASE[:24] + [b"\xff", b"\x80\x80", b"\xc3", b"\xe2\x82", b"\xf0\x9f",
                                                  b"\xc0\xaf", b"\xed\xa0\x80", b"\xfe"]),
    "good_empty_pieces": tok_file(BASE[:28] + [b"", b"", b"", b""]),
    "good_duplicate_pieces": tok_file(BASE[:28] + [b"a", b"ab", b"a", b" "]),
    "good_infinite_scores": tok_file(BASE, scores=[math.inf, -math.inf] * 16),
    # ---- must be rejected
    "bad_empty_file": b"",
    "bad_truncated_max_len": b"\x08\x00",
    "bad_max_len_zero": tok_file(BASE, max_len=0),
    "bad_max_len_negative": tok_file(BASE, max_len=-1),
    "bad_max_len_huge": tok_file(BASE, max_len=2**31 - 1),
    "bad_piece_longer_than_max_len": tok_file(BASE, max_len=5),
    "bad_negative_length": tok_file(BASE, lens={3: -1}),
    "bad_length_int32_min": tok_file(BASE, lens={0: -2**31}),
    "bad_length_past_eof": tok_file(BASE, max_len=65536, lens={31: 60000}),
    "bad_truncated_in_piece": tok_file(BASE)[:-1],
    "bad_truncated_in_score": tok_file(BASE[:31]) + b"\x00\x00",
    "bad_vocab_too_small": tok_file(BASE[:31]),
    "bad_vocab_too_large": tok_file(BASE + [b"x"]),
    "bad_trailing_byte": tok_file(BASE) + b"\x00",
    "bad_nan_score": tok_file(BASE, scores=[math.nan] * TOK_VOCAB),
    "bad_nul_in_piece": tok_file(BASE[:31] + [b"a\x00b"]),
}

# ---------------------------------------------------------------- optimizer state


def opt_file(type_=0, step=3, tensors=None, blocksize=OPT_BLOCK, version=1, magic=b"MSBNBOPT", crc=None,
             n_tensors=None, extra=b""):
    """msbnb_optim_save layout; tensors = [(name, n, is8bit, payload bytes or None)]."""
    if tensors is None:
        tensors = default_tensors(type_)
    out = magic + struct.pack("<IIQII", version, type_, step, len(tensors) if n_tensors is None else n_tensors,
                              blocksize)
    for name, n, is8, payload in tensors:
        out += struct.pack("<I", len(name)) + name + struct.pack("<QI", n, is8)
        if payload is None:
            payload = state_payload(n, is8)
        out += payload
    out += extra
    return out + struct.pack("<I", zlib.crc32(out) if crc is None else crc)


def state_payload(n, is8):
    if is8:
        blocks = -(-n // OPT_BLOCK)
        return bytes((i * 37) & 255 for i in range(n)) + bytes((i * 11) & 255 for i in range(n)) + \
            struct.pack("<%df" % (2 * blocks), *([0.5] * (2 * blocks)))
    return struct.pack("<%df" % (2 * n), *([0.01] * n + [0.0001] * n))


def default_tensors(type_):
    return [(b"a", OPT_N_A, 0, None), (b"b", OPT_N_B, 1 if type_ == 1 else 0, None)]


def nonfinite_8bit():
    blocks = -(-OPT_N_B // OPT_BLOCK)
    payload = bytes(range(OPT_N_B)) + bytes(range(OPT_N_B)) + \
        struct.pack("<%df" % (2 * blocks), *([math.nan, math.inf, 3e38] * 2)[:2 * blocks])
    return [(b"a", OPT_N_A, 0, struct.pack("<10f", *([math.nan] * 5 + [math.inf] * 5))), (b"b", OPT_N_B, 1, payload)]


OPTIM = {
    # ---- must be accepted
    "good_adamw": opt_file(0),
    "good_adamw8bit": opt_file(1),
    "good_step_zero": opt_file(0, step=0),
    "good_8bit_nonfinite_state": opt_file(1, tensors=nonfinite_8bit()),
    # ---- must be rejected
    "bad_empty_file": b"",
    "bad_truncated_header": opt_file(0)[:20],
    "bad_magic": opt_file(0, magic=b"MSBNBOPX"),
    "bad_crc": opt_file(0, crc=0x12345678),
    "bad_version": opt_file(0, version=2),
    "bad_unknown_type": opt_file(7),
    "bad_type_mismatch_8bit_layout_as_fp32": opt_file(0, tensors=default_tensors(1)),
    "bad_tensor_count": opt_file(0, n_tensors=3),
    "bad_tensor_count_huge": opt_file(0, n_tensors=2**32 - 1),
    "bad_blocksize": opt_file(0, blocksize=128),
    "bad_step_over_int64": opt_file(0, step=2**63),
    "bad_step_int64_max": opt_file(0, step=2**63 - 1),
    "bad_name_mismatch": opt_file(0, tensors=[(b"a", OPT_N_A, 0, None), (b"c", OPT_N_B, 0, None)]),
    "bad_name_length_huge": opt_file(0, tensors=[(b"a" * 200, OPT_N_A, 0, None), (b"b", OPT_N_B, 0, None)]),
    "bad_size_mismatch": opt_file(0, tensors=[(b"a", OPT_N_A + 1, 0, None), (b"b", OPT_N_B, 0, None)]),
    "bad_size_u64_max": opt_file(0, tensors=[(b"a", 2**64 - 1, 0, b""), (b"b", OPT_N_B, 0, None)]),
    "bad_8bit_flag_mismatch": opt_file(1, tensors=[(b"a", OPT_N_A, 0, None), (b"b", OPT_N_B, 0, None)]),
    "bad_truncated_moments": opt_file(0, tensors=[(b"a", OPT_N_A, 0, bytes(36)), (b"b", OPT_N_B, 0, None)]),
    "bad_truncated_absmax": opt_file(1, tensors=[(b"a", OPT_N_A, 0, None),
                                                 (b"b", OPT_N_B, 1, state_payload(OPT_N_B, 1)[:-4])]),
    "bad_trailing_bytes": opt_file(0, extra=b"\x00" * 4),
}

if __name__ == "__main__":
    write("llama2c", LLAMA2C, ".bin")
    write("tokenizer", TOKENIZER, ".bin")
    write("optim", OPTIM, ".bin")
