"""A ~0.48B-parameter random Llama in bf16 (about 0.95 GB on disk), to measure resident memory
while generating (run from the interop venv; not part of any test):

    ~/.cache/msbnb-venv/bin/python python/make_big_bf16.py /tmp/big-bf16
    /usr/bin/time -v build/msbnb generate /tmp/big-bf16 --quant nf4 --steps 16   # "Maximum resident"

Shapes: hidden 1280, 23 layers, 20 heads over 4 key/value heads, intermediate 3456, vocab 32000,
untied lm_head. Also writes a llama2.c tokenizer.bin of 32000 pieces (3 specials, 256 byte
tokens, printable ASCII, then filler pieces) so `msbnb generate` has a tokenizer of the right size.
"""
import os
import struct
import sys

import torch


def write_tokenizer(path, vocab):
    pieces = [b"<unk>", b"<s>", b"</s>"] + [b"<0x%02X>" % i for i in range(256)]
    pieces += [bytes([c]) for c in range(32, 127)] + [b" " + bytes([c]) for c in range(97, 123)]
    pieces += [b"tok%d" % i for i in range(vocab - len(pieces))]
    with open(path, "wb") as f:
        f.write(struct.pack("<i", max(len(p) for p in pieces)))
        for i, p in enumerate(pieces):
            f.write(struct.pack("<fi", -float(i), len(p)) + p)


def main():
    from transformers import LlamaConfig, LlamaForCausalLM

    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/big-bf16"
    cfg = LlamaConfig(vocab_size=32000, hidden_size=1280, intermediate_size=3456, num_hidden_layers=23,
                      num_attention_heads=20, num_key_value_heads=4, max_position_embeddings=2048,
                      tie_word_embeddings=False, rms_norm_eps=1e-5)
    torch.manual_seed(0)
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg)
    model = model.to_empty(device="cpu").to(torch.bfloat16)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02)
    n = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out)
    write_tokenizer(os.path.join(out, "tokenizer.bin"), cfg.vocab_size)
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out) if f.endswith(".safetensors"))
    print(f"{out}: {n / 1e6:.0f}M parameters, {size / 2**20:.0f} MiB of bf16 weights")


if __name__ == "__main__":
    main()
