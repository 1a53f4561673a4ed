"""PEFT adapter files, both directions (CPU):

- an adapter written by msbnb (`msbnb finetune`, two steps) loads in PEFT: the config reads back
  (r, lora_alpha, lora_dropout, target_modules), every lora_A/lora_B key maps onto the model with
  nothing missing or unexpected, and the loaded tensors equal the file's;
- an adapter saved by PEFT's save_pretrained (random, non-zero B) is accepted by msbnb
  (`msbnb generate --adapter`, which reads it through msbnb_peft_load) and its file passes
  `msbnb inspect`.

Run by scripts/interop.sh (`make interop`).
"""
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from interop_common import SHARED, STORIES, msbnb, run_tests, workdir  # noqa: E402

TMP = workdir()
TOK = os.path.join(SHARED, "models", "stories260K", "tok512.bin")
TEXT = os.path.join(SHARED, "data", "tinystories_valid_head.txt")


def base_model():
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(STORIES, device_map="cpu", dtype=torch.float32).eval()


def test_msbnb_adapter_loads_in_peft():
    from peft import PeftConfig, PeftModel
    from peft.utils import get_peft_model_state_dict

    out = os.path.join(TMP, "ours")
    msbnb("finetune", STORIES, TEXT, "--out", out, "--steps", "3", "--batch", "1", "--seq", "16", "--r", "4",
          "--alpha", "8", "--targets", "q_proj,v_proj,down_proj", "--val-windows", "2", "--quiet", "--tokenizer", TOK,
          "--quant", "f32", "--threads", "1")
    cfg = PeftConfig.from_pretrained(out)
    assert cfg.peft_type == "LORA" and cfg.r == 4 and cfg.lora_alpha == 8, cfg
    assert set(cfg.target_modules) == {"q_proj", "v_proj", "down_proj"}, cfg.target_modules
    model = PeftModel.from_pretrained(base_model(), out)
    loaded = get_peft_model_state_dict(model)
    on_disk = load_file(os.path.join(out, "adapter_model.safetensors"))
    assert set(loaded) == set(on_disk), f"keys differ: {sorted(set(loaded) ^ set(on_disk))[:4]}"
    assert len(on_disk) == 5 * 3 * 2, len(on_disk)
    for k, v in on_disk.items():
        assert torch.equal(loaded[k], v), f"{k}: PEFT holds other values than the file"
    # training moved B away from its zero init, so the adapter changes the model
    assert any(v.abs().max() > 0 for k, v in on_disk.items() if "lora_B" in k)


def test_peft_adapter_loads_in_msbnb():
    from peft import LoraConfig, get_peft_model

    out = os.path.join(TMP, "theirs")
    cfg = LoraConfig(r=4, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                     init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(base_model(), cfg).save_pretrained(out)
    meta = json.load(open(os.path.join(out, "adapter_config.json")))
    assert meta["peft_type"] == "LORA" and meta["r"] == 4
    info = msbnb("inspect", os.path.join(out, "adapter_model.safetensors")).stdout
    assert "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" in info, info[:400]
    gen = msbnb("generate", STORIES, "--adapter", out, "--steps", "4", "--prompt", "Once", "--tokenizer", TOK,
                "--threads", "1")
    assert gen.returncode == 0


if __name__ == "__main__":
    sys.exit(run_tests([test_msbnb_adapter_loads_in_peft, test_peft_adapter_loads_in_msbnb]))
