"""Peer of bench_tokenizer.c: the HF tokenizers library encoding the same text with the same
tokenizer.json on one core. Prints one line per tokenizer: NAME MB_PER_S N_IDS FNV64_OF_IDS (the
hash lets msbnb's bench confirm both produced the same ids). Run by `make bench` when the interop
venv (~/.cache/msbnb-venv) exists; usage: python hf_tokenizers_peer.py TEXT_FILE REPEATS DIR..."""
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer  # noqa: E402


def fnv64(ids):
    h = 0xcbf29ce484222325
    for i in ids:
        h ^= i & 0xFFFFFFFF
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    path, repeats, dirs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    with open(path, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8")
    for d in dirs:
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        best = None
        ids = None
        for _ in range(repeats):
            t0 = time.process_time()
            ids = tok.encode(text, add_special_tokens=False).ids
            dt = time.process_time() - t0
            best = dt if best is None else min(best, dt)
        print(f"{os.path.basename(d.rstrip('/'))} {len(raw) / best / 1e6:.3f} {len(ids)} {fnv64(ids)}", flush=True)


if __name__ == "__main__":
    main()
