"""PEFT interop of the fine-tuning path (CPU): an adapter trained by `msbnb finetune` and loaded by
PEFT onto the Hugging Face stories260K model (transformers LlamaForCausalLM, fp32) gives the same
logits as msbnb's own forward with that adapter, and the same loss as msbnb's training forward.

Our side is dumped by build/examples/lora_logits (inference logits through model.h + nn.h's
LoRA layers; the loss through train.h's training forward). Tolerances: both sides are fp32 with
different summation orders over dim 64 / hidden 172; the measured gap is ~1e-5 on logits of
magnitude ~10, so 1e-3 absolute on logits and 1e-4 on the mean loss fail any real mismatch (a
missing scaling, a transposed B, a wrong module) by orders of magnitude.

Run by scripts/interop.sh (`make interop`).
"""
import os
import subprocess
import warnings

warnings.filterwarnings("ignore")
import numpy as np  # noqa: E402
import torch  # noqa: E402

from interop_common import MSBNB, SHARED, STORIES, msbnb, run_tests, workdir  # noqa: E402

TMP = workdir()
TOK = os.path.join(SHARED, "models", "stories260K", "tok512.bin")
AUSTEN = os.path.join(SHARED, "data", "austen.txt")
LOGITS_BIN = os.path.join(os.path.dirname(MSBNB), "examples", "lora_logits")
PROMPT = ("Emma Woodhouse, handsome, clever, and rich, with a comfortable home and happy disposition, "
          "seemed to unite some of the best blessings of existence.")


def trained_adapter(name, targets, quant):
    """A short `msbnb finetune` run on Austen with a high learning rate, so B is far from zero."""
    text = os.path.join(TMP, "austen_head.txt")
    if not os.path.exists(text):
        with open(AUSTEN, "rb") as f, open(text, "wb") as g:
            g.write(f.read(60000))
    out = os.path.join(TMP, name)
    msbnb("finetune", STORIES, text, "--out", out, "--steps", "20", "--batch", "4", "--seq", "32", "--r", "4",
          "--alpha", "8", "--dropout", "0.1", "--lr", "1e-2", "--targets", targets, "--val-windows", "2", "--quiet",
          "--tokenizer", TOK, "--quant", quant, "--threads", "1", "--seed", "3")
    return out


def ours(adapter, prefix, *extra):
    p = subprocess.run([LOGITS_BIN, STORIES, adapter, TOK, PROMPT, prefix, *extra], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    info = dict(line.split() for line in p.stdout.strip().splitlines())
    ids = np.fromfile(prefix + ".tokens", dtype=np.int32)
    logits = np.fromfile(prefix + ".logits", dtype=np.float32).reshape(len(ids), -1)
    return ids, logits, float(info["loss_train"])


def peft_logits(adapter, ids):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(STORIES, device_map="cpu", dtype=torch.float32).eval()
    model = PeftModel.from_pretrained(base, adapter).eval()
    with torch.no_grad():
        return model(torch.tensor(ids[None, :], dtype=torch.long)).logits[0].float().numpy()


def ce_loss(logits, ids):
    z = torch.tensor(logits[:-1], dtype=torch.float64)
    y = torch.tensor(ids[1:], dtype=torch.long)
    return torch.nn.functional.cross_entropy(z, y).item()


def check(adapter, tag):
    ids, mine, loss_train = ours(adapter, os.path.join(TMP, tag))
    theirs = peft_logits(adapter, ids)
    assert mine.shape == theirs.shape, (mine.shape, theirs.shape)
    diff = np.abs(mine - theirs).max()
    # the adapter must matter: PEFT's logits move away from the base model's
    _, base, _ = ours("none", os.path.join(TMP, tag + "_base"))
    moved = np.abs(theirs - base).max()
    loss_peft = ce_loss(theirs, ids)
    print(f"  {tag}: {len(ids)} tokens, max |ours - peft| = {diff:.2e} (adapter moves logits by {moved:.2f}); "
          f"loss train-forward {loss_train:.6f} vs peft {loss_peft:.6f}")
    assert moved > 0.1, moved
    assert diff < 1e-3, diff
    assert abs(loss_train - loss_peft) < 1e-4, (loss_train, loss_peft)


def test_all_targets_logits_match_peft():
    check(trained_adapter("all", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", "f32"), "all")


def test_attention_only_logits_match_peft():
    check(trained_adapter("attn", "q_proj,v_proj", "f32"), "attn")


def test_qlora_adapter_on_fp32_base():
    # trained on the NF4 base (QLoRA), applied by PEFT to the fp32 model: both sides use the same
    # fp32 base here, so the logits must still agree to float rounding
    check(trained_adapter("qlora", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", "nf4"), "qlora")


if __name__ == "__main__":
    raise SystemExit(run_tests([test_all_targets_logits_match_peft, test_attention_only_logits_match_peft,
                                test_qlora_adapter_on_fp32_base]))
