"""Directories saved by msbnb's MindSpore Cells (save_hf_weights) load in transformers +
bitsandbytes (run by scripts/interop.sh, which makes them first with make_ms_saved_fixture.py in
the package's venv; MSBNB_MS_SAVED names them).

- NF4 + double quant: transformers builds bitsandbytes Linear4bit layers from the directory (its
  config.json's quantization_config) and its logits equal the MindSpore Cells' within 1e-4, the
  tolerance of test_bnb_interop.py for msbnb's own NF4 directories.
- INT8: Linear8bitLt layers; LLM.int8()'s outlier split differs from msbnb's plain INT8 product,
  so within 3e-2 of max |logit| (test_families.py's INT8 tolerance).
"""
import os
import sys
import logging

import numpy as np
import torch

from interop_common import run_tests

logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
SAVED = os.environ.get("MSBNB_MS_SAVED", "")


def load(name):
    import bitsandbytes as bnb
    from transformers import AutoModelForCausalLM

    d = os.path.join(SAVED, name)
    assert SAVED and os.path.isdir(d), f"no directory {d} (scripts/interop.sh makes it with make_ms_saved_fixture.py)"
    m = AutoModelForCausalLM.from_pretrained(d, device_map="cpu", dtype=torch.float32)
    for mod in m.modules():  # stories260K's 172-wide MLP does not fit bnb's AVX512-BF16 repacking
        if isinstance(mod, bnb.nn.Linear4bit):
            mod.support_avx512bf16_for_cpu = False
    return m.eval()


def logits_of(model, ids):
    with torch.no_grad():
        return model(torch.tensor(ids[None, :])).logits[0].float().numpy()


def test_nf4_dq_saved_by_mindspore_loads_in_transformers():
    import bitsandbytes as bnb

    ref = np.load(os.path.join(SAVED, "ms_logits.npz"))
    model = load("nf4_dq")
    layer = model.model.layers[0].mlp.down_proj
    assert isinstance(layer, bnb.nn.Linear4bit), type(layer)
    assert layer.weight.quant_state.quant_type == "nf4" and layer.weight.quant_state.nested
    err = np.abs(logits_of(model, ref["ids"]) - ref["nf4_dq"]).max()
    print(f"  nf4+dq: transformers+bitsandbytes vs msbnb's MindSpore Cells, max |logit diff| {err:.2e}")
    assert err <= 1e-4, err


def test_int8_saved_by_mindspore_loads_in_transformers():
    import bitsandbytes as bnb

    ref = np.load(os.path.join(SAVED, "ms_logits.npz"))
    model = load("int8")
    assert isinstance(model.model.layers[2].self_attn.q_proj, bnb.nn.Linear8bitLt)
    ours = ref["int8"]
    err = np.abs(logits_of(model, ref["ids"]) - ours).max() / np.abs(ours).max()
    print(f"  int8: transformers+bitsandbytes vs msbnb's MindSpore Cells, max |diff| / max |logit| {err:.2e}")
    assert err <= 3e-2, err


if __name__ == "__main__":
    sys.exit(run_tests([test_nf4_dq_saved_by_mindspore_loads_in_transformers,
                        test_int8_saved_by_mindspore_loads_in_transformers]))
