"""HF directories saved by msbnb's MindSpore side, for python/test_ms_saved_interop.py:

    make_ms_saved_fixture.py OUT     (run by scripts/interop.sh in the package's venv, which has
                                      MindSpore; the interop venv has none)

OUT/nf4_dq and OUT/int8: stories260K converted in place by msbnb.mindspore (NF4 + double quant;
INT8 per-row absmax, lm_head kept in float) and written by save_hf_weights; OUT/ms_logits.npz: the
Cells' logits [T, vocab] of each on golden.json's encoded ids (key = directory name), the values
transformers + bitsandbytes must reproduce from the directories.
"""
import json
import os
import sys

import numpy as np

from msbnb import Int4Config, Int8Config
from msbnb.mindspore import LlamaForCausalLM, convert_to_quantized_model, save_hf_weights

SHARED = os.environ.get("MSBNB_SHARED_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
STORIES = os.path.join(SHARED, "models", "stories260K", "hf")


def main(out):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(SHARED, "models", "stories260K", "golden.json")) as f:
        ids = json.load(f)["encode"]["ids"]
    configs = {"nf4_dq": Int4Config(quant_type="nf4", group_size=64, compress_statistics=True),
               "int8": Int8Config(has_fp16_weights=False)}
    logits = {"ids": np.array(ids, np.int64)}
    for name, cfg in configs.items():
        model = LlamaForCausalLM.from_pretrained(STORIES)
        convert_to_quantized_model(model, cfg, modules_to_not_convert=["lm_head"])
        save_hf_weights(model, os.path.join(out, name))
        logits[name] = model.sequence_logits(ids)
        print(f"make_ms_saved_fixture: {name} saved ({len(ids)} positions of logits)")
    np.savez(os.path.join(out, "ms_logits.npz"), **logits)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
