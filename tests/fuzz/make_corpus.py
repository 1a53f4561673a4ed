#!/usr/bin/env python3
"""Write the seed corpus of the fuzz targets (tests/fuzz/corpus/), standard library only.

One hand-made file per failure mode the readers must reject (bad_*) and a few valid files they
must accept (good_*). The ctest replay (tests/fuzz/replay.c) checks exactly that, and the CLI test
(tests/io/test_cli.c) checks that `msbnb` rejects every bad_*.safetensors with a one-line error
and leaves no output. Re-run after editing:  python3 tests/fuzz/make_corpus.py
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")


def st_file(header, data=b"", header_len=None):
    """safetensors bytes: 8-byte little-endian length, header (str/bytes), data."""
    h = header.encode() if isinstance(header, str) else header
    n = len(h) if header_len is None else header_len
    return struct.pack("<Q", n) + h + data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def js(obj):
    return json.dumps(obj, separators=(",", ":"))


def f32(*xs):
    return struct.pack("<%df" % len(xs), *xs)


SAFETENSORS = {
    # ---- must be accepted
    "good_two_tensors": st_file(js({"__metadata__": {"format": "pt"}, "a": entry("F32", [2, 2], 0, 16),
                                    "b": entry("F32", [1], 16, 20)}), f32(1, 2, 3, 4, 5)),
    "good_scalar_and_empty": st_file(js({"s": entry("U8", [], 0, 1), "e": entry("F32", [0, 7], 1, 1)}), b"\x07"),
    "good_padded_header": st_file(js({"x": entry("I8", [3], 0, 3)}) + "     ", b"\x01\x02\x03"),
    "good_every_dtype": st_file(js({
        "bf16": entry("BF16", [2], 0, 4), "f16": entry("F16", [2], 4, 8), "i32": entry("I32", [1], 8, 12),
        "i64": entry("I64", [1], 12, 20), "u8": entry("U8", [2], 20, 22), "f4": entry("F4", [4], 22, 24),
        "f8": entry("F8_E4M3", [2], 24, 26), "bool": entry("BOOL", [2], 26, 28)}), bytes(range(28))),
    "good_empty_header": st_file("{}"),
    # ---- must be rejected: sizes and offsets
    "bad_empty_file": b"",
    "bad_short_file": b"\x05\x00\x00\x00\x00",
    "bad_header_len_past_eof": st_file(js({"a": entry("U8", [1], 0, 1)}), b"\x00", header_len=10_000),
    "bad_header_len_over_limit": st_file("{}", header_len=100_000_001),
    "bad_header_len_u64_max": st_file("{}", header_len=2**64 - 1),
    "bad_overlapping_offsets": st_file(js({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}), bytes(12)),
    "bad_duplicate_ranges": st_file(js({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 0, 4)}), bytes(4)),
    "bad_gap_between_tensors": st_file(js({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 8, 12)}), bytes(12)),
    "bad_gap_at_start": st_file(js({"a": entry("F32", [1], 4, 8)}), bytes(8)),
    "bad_trailing_data": st_file(js({"a": entry("F32", [1], 0, 4)}), bytes(9)),
    "bad_wrong_byte_count": st_file(js({"a": entry("F32", [3], 0, 8)}), bytes(8)),
    "bad_offsets_past_data": st_file(js({"a": entry("F32", [2], 0, 8)}), bytes(4)),
    "bad_offsets_reversed": st_file(js({"a": entry("U8", [0], 4, 0)}), bytes(4)),
    "bad_offsets_huge": st_file('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1e30]}}', bytes(1)),
    "bad_offsets_three": st_file(js({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1, 2]}}), bytes(1)),
    "bad_offsets_missing": st_file(js({"a": {"dtype": "U8", "shape": [1]}}), bytes(1)),
    "bad_offsets_strings": st_file(js({"a": {"dtype": "U8", "shape": [1], "data_offsets": ["0", "1"]}}), bytes(1)),
    # ---- shapes
    "bad_shape_product_overflows": st_file(js({"a": entry("F32", [2**40, 2**40, 2**40], 0, 4)}), bytes(4)),
    "bad_shape_product_wraps_to_small": st_file(js({"a": entry("U8", [2**32, 2**32], 0, 0)}), b""),
    "bad_shape_dim_too_big": st_file(js({"a": entry("U8", [2**63 - 1], 0, 1)}), bytes(1)),
    "bad_shape_negative": st_file(js({"a": entry("U8", [-1], 0, 1)}), bytes(1)),
    "bad_shape_fraction": st_file(js({"a": entry("U8", [0.5], 0, 1)}), bytes(1)),
    "bad_shape_not_array": st_file(js({"a": {"dtype": "U8", "shape": 1, "data_offsets": [0, 1]}}), bytes(1)),
    "bad_shape_nine_dims": st_file(js({"a": entry("U8", [1] * 9, 0, 1)}), bytes(1)),
    "bad_f4_half_byte": st_file(js({"a": entry("F4", [3], 0, 2)}), bytes(2)),
    # ---- dtypes, keys, structure
    "bad_unknown_dtype": st_file(js({"a": entry("F31", [1], 0, 4)}), bytes(4)),
    "bad_lowercase_dtype": st_file(js({"a": entry("f32", [1], 0, 4)}), bytes(4)),
    "bad_dtype_number": st_file(js({"a": {"dtype": 4, "shape": [1], "data_offsets": [0, 4]}}), bytes(4)),
    "bad_duplicate_key": st_file('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                                 '"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', bytes(2)),
    "bad_keys_equal_after_nul_escape": st_file('{"a\\u0000x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                                               '"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', bytes(2)),
    "bad_entry_not_object": st_file(js({"a": [1, 2]})),
    "bad_non_object_header": st_file("[1,2,3]"),
    "bad_string_header": st_file('"abc"'),
    "bad_number_header": st_file("12345678"),
    "bad_metadata_value_not_string": st_file(js({"__metadata__": {"k": 1}})),
    "bad_metadata_not_object": st_file(js({"__metadata__": "x"})),
    "bad_metadata_twice": st_file('{"__metadata__":{},"__metadata__":{}}'),
    # ---- JSON syntax and encoding
    "bad_truncated_json": st_file('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}', bytes(1)),
    "bad_garbage_after_json": st_file(js({"a": entry("U8", [1], 0, 1)}) + "xyz", bytes(1)),
    "bad_newline_padding_then_text": st_file(js({}) + "  \n x"),
    "bad_utf8_invalid_byte": st_file(b'{"\xff":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', bytes(1)),
    "bad_utf8_overlong": st_file(b'{"\xc0\xaf":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', bytes(1)),
    "bad_utf8_surrogate": st_file(b'{"\xed\xa0\x80":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', bytes(1)),
    "bad_utf8_truncated": st_file(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}\xe2\x82', bytes(1)),
    "bad_nul_in_header": st_file(b'{"a\x00":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', bytes(1)),
    "bad_deep_nesting": st_file("{\"a\":" + "[" * 5000 + "]" * 5000 + "}"),
    "bad_deep_objects": st_file("{\"a\":" + "{\"b\":" * 200 + "1" + "}" * 200 + "}"),
}

# corpus/config/good_family_*.json are not written here: they are the config.json files that
# transformers writes for python/make_family_fixtures.py (every family and RoPE type msbnb reads).
CONFIG = {
    "good_llama": json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
                              "num_hidden_layers": 5, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
                              "rope_scaling": None, "tie_word_embeddings": True}, indent=2).encode(),
    "good_rope_parameters": json.dumps({"rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0,
                                                            "factor": 8.0}}).encode(),
    "good_quantization_config": json.dumps({"model_type": "llama", "quantization_config": {
        "quant_method": "bitsandbytes", "load_in_4bit": True, "llm_int8_threshold": 6.0,
        "llm_int8_skip_modules": ["lm_head"], "bnb_4bit_quant_type": "nf4"}}).encode(),
    "bad_empty": b"",
    "bad_not_object": b"[1, 2]",
    "bad_truncated": b'{"a": 1',
    "bad_trailing": b'{"a": 1} {"b": 2}',
    "bad_utf8": b'{"a": "\xc3\x28"}',
    "bad_nul": b'{"a": 1}\x00',
    "bad_deep_nesting": b"[" * 100000 + b"]" * 100000,
    "bad_deep_object": b'{"a":' * 100 + b"1" + b"}" * 100,
    "bad_single_quotes": b"{'a': 1}",
    "bad_unterminated_string": b'{"a": "abc}',
}

ADAPTER = {
    "good_peft": json.dumps({"base_model_name_or_path": None, "bias": "none", "fan_in_fan_out": False,
                             "inference_mode": False, "lora_alpha": 16, "lora_dropout": 0.05, "peft_type": "LORA",
                             "r": 8, "target_modules": ["q_proj", "v_proj"], "task_type": "CAUSAL_LM",
                             "use_rslora": False}, indent=2).encode(),
    "good_regex_targets": json.dumps({"peft_type": "LORA", "r": 4, "target_modules": ".*proj"}).encode(),
    "bad_not_lora": json.dumps({"peft_type": "IA3", "r": 8}).encode(),
    "bad_no_rank": json.dumps({"peft_type": "LORA"}).encode(),
    "bad_rank_zero": json.dumps({"peft_type": "LORA", "r": 0}).encode(),
    "bad_rank_fraction": json.dumps({"peft_type": "LORA", "r": 2.5}).encode(),
    "bad_rank_huge": json.dumps({"peft_type": "LORA", "r": 1e300}).encode(),
    "bad_dropout_one": json.dumps({"peft_type": "LORA", "r": 8, "lora_dropout": 1.0}).encode(),
    "bad_bias_value": json.dumps({"peft_type": "LORA", "r": 8, "bias": "sometimes"}).encode(),
    "bad_targets_numbers": json.dumps({"peft_type": "LORA", "r": 8, "target_modules": [1, 2]}).encode(),
    "bad_rslora_string": json.dumps({"peft_type": "LORA", "r": 8, "use_rslora": "yes"}).encode(),
    "bad_not_json": b"peft_type=LORA",
}


def st_build(tensors):
    """A valid safetensors file from [(name, dtype, shape, bytes)], data in the given order."""
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = entry(dtype, shape, len(data), len(data) + len(raw))
        data += raw
    return st_file(js(header), data)


# the exact code tables (the reader checks a stored quant_map against them)
GOLDEN = os.path.join(HERE, "..", "..", "..", "shared", "golden", "bnb")
NF4 = struct.unpack("<16f", open(os.path.join(GOLDEN, "map_nf4.f32"), "rb").read())
FP4 = struct.unpack("<16f", open(os.path.join(GOLDEN, "map_fp4.f32"), "rb").read())
DYN = [(-1 + 2 * i / 255) for i in range(256)]  # any sorted 256-entry map will do for the reader


def nf4(state=None, absmax=None, packed=None, qmap=None, extra=(), key="nf4"):
    w = "layer.weight"
    state = state or {"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [4, 4]}
    parts = [(w, "U8", [8, 1], packed if packed is not None else bytes(range(0, 256, 32))),
             (w + ".absmax", "F32", [1], absmax if absmax is not None else f32(0.5)),
             (w + ".quant_map", "F32", [16], qmap if qmap is not None else f32(*(FP4 if key == "fp4" else NF4))),
             (w + ".quant_state.bitsandbytes__" + key, "U8",
              [len(json.dumps(state))], json.dumps(state).encode())]
    return st_build(parts + list(extra))


def nf4_dq(offset=0.25, nested=None, codes=b"\x80"):
    w = "layer.weight"
    state = {"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [4, 4], "nested_blocksize": 256,
             "nested_dtype": "float32", "nested_offset": offset}
    s = json.dumps(state).encode()
    return st_build([(w, "U8", [8, 1], bytes(8)), (w + ".absmax", "U8", [len(codes)], codes),
                     (w + ".quant_map", "F32", [16], f32(*NF4)),
                     (w + ".nested_absmax", "F32", [1], nested if nested is not None else f32(0.1)),
                     (w + ".nested_quant_map", "F32", [256], f32(*DYN)),
                     (w + ".quant_state.bitsandbytes__nf4", "U8", [len(s)], s)])


def int8(scb=None, fmt=b"\x00", weight=None):
    return st_build([("l.weight", "I8", [2, 3], weight if weight is not None else bytes([1, 2, 3, 0xff, 0x81, 0x7f])),
                     ("l.SCB", "F32", [2] if scb is None else [len(scb) // 4], scb if scb is not None else f32(1.0, 2.0)),
                     ("l.weight_format", "U8", [], fmt)])


def int4(state=None, scales=None):
    state = state or {"quant_type": "int4", "group_size": 8, "dtype": "float32", "shape": [2, 8], "format_version": 1}
    s = json.dumps(state).encode()
    return st_build([("l.weight", "U8", [2, 4], bytes([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0])),
                     ("l.weight.scales", "F32", [1, 2], scales if scales is not None else f32(0.1, 0.2)),
                     ("l.weight.quant_state.msbnb__int4", "U8", [len(s)], s)])


BNB = {
    "good_nf4": nf4(),
    "good_fp4": nf4(state={"quant_type": "fp4", "blocksize": 64, "dtype": "float16", "shape": [4, 4]}, key="fp4"),
    "good_nf4_double_quant": nf4_dq(),
    "good_int8_linear8bitlt": int8(),
    "good_int4": int4(),
    "bad_absmax_count": nf4(absmax=f32(0.5, 0.5)),
    # the first F32 [1] entry of the header is .absmax: make it I32
    "bad_absmax_dtype": nf4().replace(b'"F32","shape":[1]', b'"I32","shape":[1]', 1),
    "bad_state_shape_mismatch": nf4(state={"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [4, 5]}),
    "bad_state_blocksize_63": nf4(state={"quant_type": "nf4", "blocksize": 63, "dtype": "float32", "shape": [4, 4]}),
    "bad_state_blocksize_0": nf4(state={"quant_type": "nf4", "blocksize": 0, "dtype": "float32", "shape": [4, 4]}),
    "bad_state_huge_shape": nf4(state={"quant_type": "nf4", "blocksize": 64, "dtype": "float32",
                                       "shape": [2**40, 2**40]}),
    "bad_state_negative_shape": nf4(state={"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [-4, -4]}),
    "bad_state_no_shape": nf4(state={"quant_type": "nf4", "blocksize": 64, "dtype": "float32"}),
    "bad_state_type_mismatch": nf4(state={"quant_type": "fp4", "blocksize": 64, "dtype": "float32", "shape": [4, 4]}),
    "bad_quant_map_not_nf4": nf4(qmap=f32(*FP4)),
    "bad_quant_map_short": nf4(qmap=f32(*NF4[:8])),
    "bad_packed_short": nf4(packed=bytes(4)),
    "bad_nested_offset_string": nf4_dq(offset="0.25"),
    "bad_nested_absmax_count": nf4_dq(nested=f32(0.1, 0.2)),
    "bad_nested_codes_count": nf4_dq(codes=b"\x80\x80"),
    "bad_int8_scb_count": int8(scb=f32(1.0)),
    "bad_int8_weight_format_col32": int8(fmt=b"\x01"),
    "bad_int4_group_not_dividing": int4(state={"quant_type": "int4", "group_size": 6, "dtype": "float32",
                                               "shape": [2, 8], "format_version": 1}),
    "bad_int4_future_version": int4(state={"quant_type": "int4", "group_size": 8, "dtype": "float32",
                                           "shape": [2, 8], "format_version": 99}),
    "bad_int4_scales_count": int4(scales=f32(0.1)),
}


def write(sub, files, ext):
    d = os.path.join(OUT, sub)
    os.makedirs(d, exist_ok=True)
    for old in os.listdir(d):
        os.remove(os.path.join(d, old))
    for name, data in files.items():
        with open(os.path.join(d, name + ext), "wb") as f:
            f.write(data)
    print(f"{d}: {len(files)} files")


if __name__ == "__main__":
    write("safetensors", SAFETENSORS, ".safetensors")
    write("config", CONFIG, ".json")
    write("adapter", ADAPTER, ".json")
    write("bnb", BNB, ".safetensors")
