#!/usr/bin/env python3
"""Write a LLaMA-shaped HF model directory of a few hundred MB with random weights, to measure the
converter's peak memory (standard library only; not used by ctest):

    python3 tests/io/make_big_checkpoint.py /tmp/big            # 8 layers, ~440 MB
    /usr/bin/time -v build/msbnb quantize /tmp/big /tmp/big-nf4 --type nf4 --double-quant

Shapes: hidden 1024, intermediate 2816, vocab 8192, untied lm_head. Largest tensor: the embedding
(8192 x 1024 f32 = 33.5 MB); largest linear layer 11.5 MB.
"""
import array
import json
import os
import random
import struct
import sys

HIDDEN, INTER = 1024, 2816
# VOCAB=512 in the environment gives a model the llama2.c tok512.bin tokenizer can drive
# (calibration timing in docs/quantization.md: 40 layers = 0.5 B parameters)
VOCAB = int(os.environ.get("VOCAB", "8192"))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/msbnb-big"
    layers = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    os.makedirs(out, exist_ok=True)
    rnd = random.Random(0)
    # one block of normal draws, reused with a per-tensor offset so tensors differ
    block = array.array("f", (rnd.gauss(0.0, 0.02) for _ in range(1 << 20))).tobytes()

    tensors = [("model.embed_tokens.weight", [VOCAB, HIDDEN]), ("model.norm.weight", [HIDDEN]),
               ("lm_head.weight", [VOCAB, HIDDEN])]
    for i in range(layers):
        p = f"model.layers.{i}."
        tensors += [(p + "input_layernorm.weight", [HIDDEN]), (p + "post_attention_layernorm.weight", [HIDDEN])]
        tensors += [(p + f"self_attn.{n}_proj.weight", [HIDDEN, HIDDEN]) for n in "qkvo"]
        tensors += [(p + "mlp.gate_proj.weight", [INTER, HIDDEN]), (p + "mlp.up_proj.weight", [INTER, HIDDEN]),
                    (p + "mlp.down_proj.weight", [HIDDEN, INTER])]
    tensors.sort()
    header, pos = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in tensors:
        n = 4
        for d in shape:
            n *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [pos, pos + n]}
        pos += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for k, (name, shape) in enumerate(tensors):
            n = 4
            for d in shape:
                n *= d
            start = (k * 4096 * 4) % len(block)
            data = (block[start:] + block * (n // len(block) + 2))[:n]
            f.write(data)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": VOCAB,
           "hidden_size": HIDDEN, "intermediate_size": INTER, "num_hidden_layers": layers,
           "num_attention_heads": 16, "num_key_value_heads": 16, "max_position_embeddings": 2048,
           "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "float32"}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    print(f"{out}: {len(tensors)} tensors, {pos / 1e6:.1f} MB of data")


if __name__ == "__main__":
    main()
