"""Model conversion with msbnb's MindSpore Cells: the design's scenarios on the real stories260K
LLaMA (../shared/models/stories260K/hf) and a small MLP.

  1. whole model to 4 bits (NF4 + double quant), lm_head/embedding kept, sizes and perplexity;
  2. INT4 on selected layers only (a skip list), the layers the format cannot hold reported;
  3. deferred quantization: train in full precision (Linear8bit, has_fp16_weights=True), then
     quantize_model_weights();
  4. size comparison of the variants.
Exits non-zero on a failed check.

    python examples/python/model_conversion.py [--shared ../shared]
"""
import argparse
import os
import sys

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn

from msbnb import Int4Config, Int8Config
from msbnb.mindspore import (LlamaForCausalLM, Tokenizer, compare_model_sizes, convert_to_quantized_model,
                             get_model_size, print_quantization_summary, quantize_model_weights)

ap = argparse.ArgumentParser()
ap.add_argument("--shared", default=os.environ.get("MSBNB_SHARED_DIR", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared")))
args = ap.parse_args()
hf = os.path.join(args.shared, "models", "stories260K", "hf")
tok = Tokenizer(os.path.join(args.shared, "models", "stories260K", "tok512.bin"), 512)
with open(os.path.join(args.shared, "data", "tinystories_sample.txt"), encoding="utf-8") as f:
    stories = [tok.encode(s.strip()) for s in f.read().split("<|endoftext|>") if s.strip()][:3]
failed = False


def check(ok, what):
    global failed
    print(("ok   " if ok else "FAIL ") + what)
    failed |= not ok


# ---- 1. whole model, NF4 + double quant --------------------------------------------------
fp32 = LlamaForCausalLM.from_pretrained(hf)
fp32_bytes = get_model_size(fp32)["total_bytes"]
ppl32, _ = fp32.perplexity(stories)
nf4 = LlamaForCausalLM.from_pretrained(hf)
convert_to_quantized_model(nf4, Int4Config(quant_type="nf4", group_size=64, compress_statistics=True),
                           modules_to_not_convert=["lm_head"])
print("\n== 1. whole model -> NF4 + double quant")
print_quantization_summary(nf4)
ppl4, _ = nf4.perplexity(stories)
cmp = compare_model_sizes(fp32_bytes, nf4)
print(f"perplexity fp32 {ppl32:.3f} -> nf4 {ppl4:.3f}")
check(len(nf4.msbnb_conversion_report["converted"]) == 35, "35 projections converted")
check(ppl4 < ppl32 * 1.5, "NF4 perplexity within 1.5x of fp32 on this tiny model")

# ---- 2. selected layers, INT4 --------------------------------------------------------------
print("\n== 2. INT4 (group 64) on attention only: MLPs skipped")
sel = LlamaForCausalLM.from_pretrained(hf)
convert_to_quantized_model(sel, Int4Config(quant_type="int4", group_size=64),
                           modules_to_not_convert=["mlp"])
rep = sel.msbnb_conversion_report
print(f"converted {len(rep['converted'])}, skipped {len(rep['skipped'])}, failed {len(rep['failed'])}")
check(len(rep["converted"]) == 20 and len(rep["skipped"]) == 15, "20 attention projections, 15 MLP skipped")
ppl_sel, _ = sel.perplexity(stories)
print(f"perplexity int4(attention) {ppl_sel:.3f}")
failed_all = LlamaForCausalLM.from_pretrained(hf)
convert_to_quantized_model(failed_all, Int4Config(quant_type="int4", group_size=64))
for path, msg in list(failed_all.msbnb_conversion_report["failed"].items())[:1]:
    print(f"not convertible (kept float): {path}: {msg}")
check(len(failed_all.msbnb_conversion_report["failed"]) == 5, "the 5 down_proj (172 columns) reported for group 64")

# ---- 3. deferred quantization --------------------------------------------------------------
print("\n== 3. deferred quantization: train in full precision, then INT8")


class MLP(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Dense(32, 64), nn.Dense(64, 4)
        self.act = nn.ReLU()

    def construct(self, x):
        return self.fc2(self.act(self.fc1(x)))


rng = np.random.default_rng(0)
x = Tensor(rng.standard_normal((256, 32)).astype(np.float32))
y = Tensor(np.tanh(x.asnumpy() @ rng.standard_normal((32, 4)).astype(np.float32)))
mlp = MLP()
convert_to_quantized_model(mlp, Int8Config(has_fp16_weights=True, threshold=0.0))
step = nn.TrainOneStepCell(nn.WithLossCell(mlp, nn.MSELoss()), nn.Adam(mlp.trainable_params(), 0.01))
losses = [float(step(x, y).asnumpy()) for _ in range(100)]
print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")
before = get_model_size(mlp)["total_bytes"]
print("quantized:", quantize_model_weights(mlp))
loss_q = float(nn.MSELoss()(mlp(x), y).asnumpy())
print(f"loss after INT8 quantization {loss_q:.4f}")
check(losses[-1] < 0.5 * losses[0], "full-precision training lowered the loss")
check(abs(loss_q - losses[-1]) < 0.1 * losses[-1] + 1e-3, "INT8 keeps the trained loss")
compare_model_sizes(before, mlp)

# ---- 4. sizes ------------------------------------------------------------------------------
print("\n== 4. sizes")
for name, m in (("fp32", fp32), ("nf4+dq", nf4), ("int4 attention", sel)):
    s = get_model_size(m)
    print(f"{name:16s} {s['total_bytes']:>9,} bytes ({s['quantized_bytes']:,} quantized)")
check(cmp["ratio"] > 1.5, "NF4 model smaller than fp32 (embeddings stay fp32)")
sys.exit(1 if failed else 0)
