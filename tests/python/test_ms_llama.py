"""The MindSpore LLaMA on the real stories260K checkpoint: golden.json reproduced, a file from
`msbnb quantize` loaded into the Cells (logits equal to quantizing in place, greedy output equal to
`msbnb generate`), PEFT adapters that `msbnb generate --adapter` reads, and a QLoRA smoke test.

Compiled graphs (ms.jit) are shared through module-scoped fixtures to keep compile time down.
"""

import json
import os
import time

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
from mindspore import Tensor, nn  # noqa: E402

from conftest import SHARED, STORIES, run_cli  # noqa: E402
from msbnb.mindspore import (CausalLMLoss, Linear4bit, Linear4bitWithLoRA, LlamaForCausalLM,  # noqa: E402
                             Tokenizer, apply_lora, convert_to_quantized_model, freeze_model_except_lora,
                             load_peft_adapter, save_hf_weights, save_peft_adapter)
from msbnb.qtensor import QTensor  # noqa: E402

GOLDEN = os.path.join(SHARED, "models", "stories260K", "golden.json")
TOK = os.path.join(SHARED, "models", "stories260K", "tok512.bin")


@pytest.fixture(scope="module")
def golden():
    with open(GOLDEN) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def tok():
    return Tokenizer(TOK, 512)


@pytest.fixture(scope="module")
def fp32():
    return LlamaForCausalLM.from_pretrained(STORIES)


@pytest.fixture(scope="module")
def nf4_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("nf4")
    run_cli("quantize", STORIES, str(out), "--type", "nf4", "--double-quant", "--quiet")
    return str(out)


def test_tokenizer_matches_golden(golden, tok):
    assert tok.encode(golden["encode"]["text"]) == golden["encode"]["ids"]
    ids = golden["greedy_from_bos_64_tokens"]["ids"]
    assert tok.decode(ids[1:]) == golden["greedy_from_bos_64_tokens"]["text"]


def test_fp32_reproduces_golden(golden, fp32):
    """float32 against the float64 reference: logits within 1e-3, greedy tokens identical."""
    lg = fp32.sequence_logits(golden["encode"]["ids"])
    assert np.abs(lg[0, :8] - np.array(golden["logits_pos0_first8"])).max() < 1e-3
    top = np.argsort(-lg[-1])[:5]
    assert [int(t) for t in top] == [t for t, _ in golden["logits_last_position_top5"]]
    assert np.allclose([lg[-1, t] for t, _ in golden["logits_last_position_top5"]],
                       [v for _, v in golden["logits_last_position_top5"]], atol=1e-3)
    assert fp32.generate([1], 63) == golden["greedy_from_bos_64_tokens"]["ids"]


def test_perplexity_matches_golden(golden, fp32, tok):
    ref = golden["nll_tinystories_v2_sample_cs336"]
    with open(os.path.join(SHARED, "data", "tinystories_sample.txt"), encoding="utf-8") as f:
        stories = [s.strip() for s in f.read().split("<|endoftext|>") if s.strip()][: ref["stories"]]
    seqs = [tok.encode(s) for s in stories]
    assert sum(len(s) - 1 for s in seqs) == ref["tokens_scored"]
    ppl, nll = fp32.perplexity(seqs)
    assert abs(nll - ref["mean_nll_nats"]) < 1e-4 and abs(ppl - ref["ppl"]) < 1e-3


def test_msbnb_quantize_file_equals_quantizing_in_place(golden, nf4_dir, tok):
    """The NF4 file of `msbnb quantize` loads into Linear4bit Cells with the very codes that
    converting the fp32 model in place produces, so the logits are identical; greedy output equals
    `msbnb generate` on the same file."""
    qm = LlamaForCausalLM.from_pretrained(nf4_dir)
    assert isinstance(qm.model.layers[0].self_attn.q_proj, Linear4bit)
    inplace = LlamaForCausalLM.from_pretrained(STORIES)
    from msbnb import Int4Config
    convert_to_quantized_model(inplace, Int4Config(quant_type="nf4", group_size=64, compress_statistics=True),
                               modules_to_not_convert=["lm_head"])
    a = qm.model.layers[2].mlp.down_proj
    b = inplace.model.layers[2].mlp.down_proj
    assert np.array_equal(a.weight.asnumpy(), b.weight.asnumpy())
    assert np.array_equal(a.weight_stats_q.asnumpy(), b.weight_stats_q.asnumpy())
    ids = golden["encode"]["ids"]
    assert np.array_equal(qm.sequence_logits(ids), inplace.sequence_logits(ids))
    out = qm.generate([1], 40)
    cli = run_cli("generate", nf4_dir, "--steps", "40", "--tokenizer", TOK).stdout
    assert tok.decode(out[1:]).strip() == cli.strip()


def test_save_hf_weights_round_trip(golden, nf4_dir, tok, tmp_path):
    """save_hf_weights writes a whole HF directory: the Cells in bitsandbytes' layout (msbnb reads
    the same codes) and config.json with the quantization_config `msbnb quantize` writes; loaded
    back into the Cells it gives identical logits, and the msbnb CLI reads it (perplexity and
    greedy text equal to those of the `msbnb quantize` directory it came from)."""
    import msbnb
    qm = LlamaForCausalLM.from_pretrained(nf4_dir)
    out = str(tmp_path / "saved")
    assert save_hf_weights(qm, out) == out
    assert sorted(os.listdir(out)) == ["config.json", "model.safetensors"]
    with open(os.path.join(out, "config.json")) as f, open(os.path.join(nf4_dir, "config.json")) as g:
        assert json.load(f) == json.load(g)  # quantization_config included
    back = msbnb.load_quantized(out)
    src = msbnb.load_quantized(nf4_dir)
    assert sorted(back) == sorted(src)
    for name in ("model.layers.0.self_attn.q_proj.weight", "model.layers.4.mlp.down_proj.weight"):
        assert isinstance(back[name], QTensor)
        assert np.array_equal(back[name].data, src[name].data)
        assert np.array_equal(back[name].dequantize(), src[name].dequantize())
    assert np.array_equal(back["model.norm.weight"], src["model.norm.weight"])
    ids = golden["encode"]["ids"]
    again = LlamaForCausalLM.from_pretrained(out)
    assert isinstance(again.model.layers[3].mlp.gate_proj, Linear4bit)
    assert np.array_equal(again.sequence_logits(ids), qm.sequence_logits(ids))
    text = os.path.join(SHARED, "data", "tinystories_sample.txt")
    for cmd in (["perplexity", "{}", text, "--max-tokens", "2000", "--tokenizer", TOK],
                ["generate", "{}", "--steps", "32", "--tokenizer", TOK]):
        a = run_cli(*[out if c == "{}" else c for c in cmd]).stdout
        b = run_cli(*[nf4_dir if c == "{}" else c for c in cmd]).stdout
        assert a == b and a.strip()
    # a single file on request (the older form)
    single = save_hf_weights(qm, str(tmp_path / "one.safetensors"))
    assert np.array_equal(msbnb.load_quantized(single)["model.norm.weight"], src["model.norm.weight"])


def test_save_hf_weights_converted_in_place_and_atomic(tmp_path):
    """A model converted in place (INT8, lm_head kept in float) saves with the source's config.json
    plus the INT8 quantization_config; saving again replaces the directory whole; a failed save
    leaves the previous directory and no temporary behind."""
    from msbnb import Int8Config
    model = LlamaForCausalLM.from_pretrained(STORIES)
    convert_to_quantized_model(model, Int8Config(has_fp16_weights=False), modules_to_not_convert=["lm_head"])
    out = tmp_path / "int8"
    save_hf_weights(model, str(out))
    with open(out / "config.json") as f:
        cfg = json.load(f)
    with open(os.path.join(STORIES, "config.json")) as f:
        want = json.load(f)
    q = cfg.pop("quantization_config")
    assert cfg == want
    assert q["quant_method"] == "bitsandbytes" and q["load_in_8bit"] and not q["load_in_4bit"]
    assert q["llm_int8_skip_modules"] == ["lm_head"] and q["llm_int8_threshold"] == 6.0
    # the CLI reads it: the same text as its own INT8 quantization of the source
    cli_q = str(tmp_path / "cli-int8")
    run_cli("quantize", STORIES, cli_q, "--type", "int8", "--quiet")
    gen = ["--steps", "24", "--tokenizer", TOK]
    assert run_cli("generate", str(out), *gen).stdout == run_cli("generate", cli_q, *gen).stdout
    # replaced whole; a failing save (a broken source config.json) leaves it as it was
    before = (out / "model.safetensors").read_bytes()
    bad = tmp_path / "bad-src"
    bad.mkdir()
    (bad / "config.json").write_text('{"model_type": "llama", ')
    import msbnb
    with pytest.raises(msbnb.FormatError, match="config.json"):
        save_hf_weights(model, str(out), source=str(bad))
    assert (out / "model.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".msbnb-tmp")] == []
    other = tmp_path / "not-a-model"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not a model directory"):
        save_hf_weights(model, str(other))
    assert (other / "notes.txt").read_text() == "keep"
    save_hf_weights(LlamaForCausalLM.from_pretrained(STORIES), str(out))  # float now: no quantization_config
    with open(out / "config.json") as f:
        assert "quantization_config" not in json.load(f)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".msbnb-tmp")] == []


def test_qlora_smoke_and_peft_adapter(tmp_path, nf4_dir, tok):
    """QLoRA on stories260K NF4 in GRAPH_MODE (under 60 s): the loss falls, the codes stay, the
    adapter saved in PEFT format loads back (same outputs) and `msbnb generate --adapter` reads it
    and produces the text this model generates."""
    t0 = time.time()
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        model = LlamaForCausalLM.from_pretrained(nf4_dir)
        apply_lora(model, r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "gate_proj", "up_proj",
                                                                "down_proj", "k_proj", "o_proj"])
        freeze_model_except_lora(model)
        codes = model.model.layers[0].self_attn.q_proj.weight.asnumpy().copy()
        with open(os.path.join(SHARED, "data", "austen.txt"), encoding="utf-8") as f:
            text = f.read()[:20000]
        data = np.array(tok.encode(text), np.int32)
        rng = np.random.default_rng(0)
        seq, batch = 64, 8
        opt = nn.AdamWeightDecay(model.trainable_params(), learning_rate=3e-3, weight_decay=0.0)
        step = nn.TrainOneStepCell(CausalLMLoss(model), opt)
        losses = []
        for _ in range(30):
            starts = rng.integers(0, len(data) - seq - 1, batch)
            b = np.stack([data[s:s + seq + 1] for s in starts])
            losses.append(float(step(Tensor(b)).asnumpy()))
        t_train = time.time() - t0  # model load + quantized-model compile + 30 steps
        assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3, losses
        assert np.array_equal(codes, model.model.layers[0].self_attn.q_proj.weight.asnumpy())
        adir = str(tmp_path / "adapter")
        save_peft_adapter(model, adir, base_model_name_or_path=STORIES)
        assert os.path.exists(os.path.join(adir, "adapter_config.json"))
        # a fresh NF4 model with the adapter loaded computes the same logits
        fresh = LlamaForCausalLM.from_pretrained(nf4_dir)
        mods = load_peft_adapter(fresh, adir)
        assert len(mods) == 35 and isinstance(fresh.model.layers[1].mlp.up_proj, Linear4bitWithLoRA)
        ids = tok.encode("It is a truth universally acknowledged")
        assert np.allclose(model.sequence_logits(ids), fresh.sequence_logits(ids), atol=1e-5)
        out = fresh.generate(ids, 24)
        cli = run_cli("generate", nf4_dir, "--adapter", adir, "--prompt", "It is a truth universally acknowledged",
                      "--steps", "24", "--tokenizer", TOK).stdout
        assert tok.decode(out[1:]).strip() == cli.strip()
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    # the figures (pytest -s); no timing assertion in tests
    print(f"QLoRA smoke test: training {t_train:.1f} s, with the adapter checks {time.time() - t0:.1f} s")


FIXTURE = os.environ.get("MSBNB_PY_FIXTURE", "")


@pytest.mark.parametrize("kind", ["nf4_dq", "fp4", "int8"])
def test_files_written_by_transformers_and_bitsandbytes(kind):
    """Checkpoints saved by transformers + bitsandbytes (`make interop` writes them) load into the
    Cells: every quantized projection dequantizes to bitsandbytes' own dequantization."""
    d = os.path.join(FIXTURE, kind)
    if not FIXTURE or not os.path.isdir(d):
        if os.environ.get("MSBNB_PY_FIXTURE_REQUIRED") == "1":
            pytest.fail(f"fixture {d} missing")
        pytest.skip("no transformers + bitsandbytes checkpoint (made by `make interop`)")
    ref = dict(np.load(os.path.join(FIXTURE, f"{kind}.reference.npz")))
    model = LlamaForCausalLM.from_pretrained(d)
    cells = dict(model.cells_and_names())
    assert len(ref) == 35
    for name, want in ref.items():
        layer = cells[name[: -len(".weight")]]
        assert layer.quant_type == {"nf4_dq": "nf4", "fp4": "fp4", "int8": "int8"}[kind]
        got = layer.dequantize()
        if kind == "int8":  # bitsandbytes computes code·SCB/127 in another order: within 1 ulp
            assert np.allclose(got, want.reshape(got.shape), rtol=2e-7, atol=0), name
        else:
            assert np.array_equal(got, want.reshape(got.shape)), name


def test_int8_file_from_msbnb_quantize(tmp_path):
    """An INT8 file of `msbnb quantize` becomes Linear8bit Cells with the codes and scales that
    Linear8bit.from_linear gives the fp32 weights."""
    from msbnb.mindspore import Linear8bit
    out = str(tmp_path / "int8")
    run_cli("quantize", STORIES, out, "--type", "int8", "--quiet")
    qm = LlamaForCausalLM.from_pretrained(out)
    fm = LlamaForCausalLM.from_pretrained(STORIES)
    a = qm.model.layers[1].mlp.up_proj
    assert isinstance(a, Linear8bit) and a.is_quantized
    b = Linear8bit.from_linear(fm.model.layers[1].mlp.up_proj)
    assert np.array_equal(a.weight.asnumpy(), b.weight.asnumpy())
    assert np.array_equal(a.weight_stats.asnumpy(), b.weight_stats.asnumpy())


def test_helpers_follow_loaded_parameters(mode, tmp_path):
    """After a checkpoint is loaded into a model whose helpers already ran (Parameter.set_data, as
    set_adapter and merging do too), sequence_logits and generate compute with the new values, in
    both modes (in PyNative an ms.jit graph would keep computing with the buffers it first ran with)."""
    from msbnb.mindspore import LlamaConfig
    cfg = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, max_position_embeddings=16)
    ids = [1, 5, 7, 9]
    model, other = LlamaForCausalLM(cfg), LlamaForCausalLM(cfg)
    for m in (model, other):
        convert_to_quantized_model(m, "nf4", modules_to_not_convert=["lm_head"])
    before, want = model.sequence_logits(ids), other.sequence_logits(ids)
    model.generate([1], 4)
    assert not np.array_equal(before, want)
    ck = str(tmp_path / "other.ckpt")
    ms.save_checkpoint(other, ck)
    assert ms.load_param_into_net(model, ms.load_checkpoint(ck))[0] == []
    assert np.array_equal(model.sequence_logits(ids), want)
    assert model.generate([1], 4) == other.generate([1], 4)
