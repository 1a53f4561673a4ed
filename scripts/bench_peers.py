"""bench_peers.py — the training peer of `msbnb_bench train`: transformers + PEFT + bitsandbytes at
the same settings (LLaMA dim 768, 12 layers, 12 heads, hidden 2048, vocab 32000, tied embeddings,
random weights quantized NF4 + double quant by bitsandbytes; LoRA r 8, alpha 16, dropout 0.05 on
all seven projections; batch 4 x seq 256; AdamW on the adapters), in two computes:
  fp32  bnb_4bit_compute_dtype=float32, no autocast
  bf16  bnb_4bit_compute_dtype=bfloat16 and torch.autocast("cpu", bfloat16) (QLoRA's setting)
at each thread count asked (torch.set_num_threads). By default bf16 runs only where the CPU has
native bf16 dot products (avx512_bf16 / amx_bf16 in /proc/cpuinfo): elsewhere PyTorch emulates it
(measured on the Zen 2 development host, --quick: 17 tokens/s against 574 in fp32), and a full-size
step would take many minutes; --computes fp32,bf16 forces both. Best step of a few after a warm-up, tokens/s:
with one thread the calling thread's CPU time (as msbnb_bench), else wall time.

Appends one JSON line per run to --out (build/bench/peers.jsonl): the msbnb bench reads it and
prints its ratio to the peer of the same compute and thread count. Run by `make bench-peers`
with the interop venv (~/.cache/msbnb-venv); nothing here re-implements msbnb.
"""
import argparse
import json
import platform
import tempfile
import time

import torch
import transformers
import peft
import bitsandbytes
from transformers import BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def native_bf16():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def run(path, compute, threads, batch, seq, steps):
    torch.set_num_threads(threads)
    dtype = torch.bfloat16 if compute == "bf16" else torch.float32
    q = LlamaForCausalLM.from_pretrained(
        path,
        quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                               bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype),
        device_map="cpu")
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = peft.get_peft_model(q, peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=targets,
                                                   task_type="CAUSAL_LM"))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    gen = torch.Generator().manual_seed(7)
    clock = time.thread_time if threads == 1 else time.perf_counter
    best = float("inf")
    for it in range(steps + 1):
        ids = torch.randint(0, 32000, (batch, seq), generator=gen)
        t0 = clock()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=compute == "bf16"):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        dt = clock() - t0
        if it > 0:
            best = min(best, dt)
    return batch * seq / best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--computes", default=None, help="fp32,bf16 (default: bf16 only with native bf16)")
    ap.add_argument("--quick", action="store_true", help="dim 256, 4 layers, batch 1 x 128 (smoke run)")
    a = ap.parse_args()
    computes = a.computes.split(",") if a.computes else (["fp32", "bf16"] if native_bf16() else ["fp32"])
    if "bf16" not in computes:
        print("bench_peers: bf16 autocast peer skipped: no native bf16 on this CPU (--computes fp32,bf16 forces it)",
              flush=True)
    dim, layers, heads, hidden, batch, seq = (256, 4, 4, 688, 1, 128) if a.quick else (768, 12, 12, 2048, 4, 256)
    cfg = LlamaConfig(hidden_size=dim, intermediate_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=heads, vocab_size=32000, max_position_embeddings=256,
                      tie_word_embeddings=True)
    torch.manual_seed(1)
    peer = (f"transformers {transformers.__version__} + PEFT {peft.__version__} + bitsandbytes "
            f"{bitsandbytes.__version__}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as d, open(a.out, "a") as out:
        LlamaForCausalLM(cfg).save_pretrained(d)
        for threads in [int(t) for t in a.threads.split(",")]:
            for compute in computes:
                tps = run(d, compute, threads, batch, seq, a.steps)
                rec = {"peer": f"{peer}, {compute}{' autocast' if compute == 'bf16' else ''}", "compute": compute,
                       "threads": threads, "tokens_per_s": round(tps, 2), "batch": batch, "seq": seq, "dim": dim,
                       "layers": layers, "cpu": cpu_name()}
                print(json.dumps(rec), flush=True)
                out.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
