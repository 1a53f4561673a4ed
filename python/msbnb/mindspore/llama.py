"""A small LLaMA in MindSpore whose Cells carry Hugging Face's names, so an HF safetensors
directory (plain, or quantized by `msbnb quantize` / bitsandbytes / transformers) loads directly.

    model = LlamaForCausalLM.from_pretrained("../shared/models/stories260K/hf")   # fp32, or
    model = LlamaForCausalLM.from_pretrained("out-nf4")   # quantized layers become Linear4bit/8bit
    ids = model.generate([1], max_new_tokens=64)          # greedy, with a KV cache
    model.perplexity(ids)

Architecture (HF LlamaForCausalLM): token embedding, per layer RMSNorm → attention (RoPE in
HF's rotate_half convention, grouped-query heads) → residual, RMSNorm → SwiGLU MLP → residual;
final RMSNorm; lm_head (or the embedding, tied). Parameter names: model.embed_tokens.weight,
model.layers.N.self_attn.{q,k,v,o}_proj.weight, model.layers.N.mlp.{gate,up,down}_proj.weight,
model.layers.N.{input,post_attention}_layernorm.weight, model.norm.weight, lm_head.weight.

Shapes: ids [B, T] int32; hidden [B, T, dim]; q [B, heads, T, head_dim]; k, v [B, kv_heads, S, head_dim]
(S = cached + new positions); logits [B, T, vocab] float32. construct() runs whole sequences (training,
perplexity; GRAPH_MODE or PyNative); generate() runs PyNative steps over a KV cache.
"""

import json
import math
import os

import numpy as np

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

from ._ops import with_op_errors

__all__ = ["LlamaConfig", "LlamaForCausalLM"]


class LlamaConfig:
    """The fields of HF's config.json the model uses."""

    def __init__(self, vocab_size=512, hidden_size=64, intermediate_size=172, num_hidden_layers=5,
                 num_attention_heads=8, num_key_value_heads=None, head_dim=None, max_position_embeddings=512,
                 rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
                 **_ignored):
        self.vocab_size = int(vocab_size)
        self.hidden_size = int(hidden_size)
        self.intermediate_size = int(intermediate_size)
        self.num_hidden_layers = int(num_hidden_layers)
        self.num_attention_heads = int(num_attention_heads)
        self.num_key_value_heads = int(num_key_value_heads or num_attention_heads)
        self.head_dim = int(head_dim or hidden_size // num_attention_heads)
        self.max_position_embeddings = int(max_position_embeddings)
        self.rms_norm_eps = float(rms_norm_eps)
        self.rope_theta = float(rope_theta)
        self.tie_word_embeddings = bool(tie_word_embeddings)
        self.bos_token_id, self.eos_token_id = bos_token_id, eos_token_id
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"LlamaConfig: {self.num_attention_heads} heads are not a multiple of "
                             f"{self.num_key_value_heads} key/value heads")
        self.source_dir = None  # the HF directory from_json read (save_hf_weights starts from its config.json)

    _FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps", "rope_theta",
               "tie_word_embeddings", "bos_token_id", "eos_token_id")

    def to_dict(self):
        """HF config.json fields of a LlamaForCausalLM with this configuration."""
        d = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
             "attention_bias": False, "mlp_bias": False, "torch_dtype": "float32"}
        d.update({k: getattr(self, k) for k in self._FIELDS})
        return d

    @classmethod
    def from_json(cls, path):
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        if d.get("model_type", "llama") != "llama":
            raise ValueError(f"{path}: model_type {d.get('model_type')!r} is not 'llama'")
        cfg = cls(**d)
        cfg.source_dir = os.path.dirname(os.path.abspath(path))
        return cfg


class RMSNorm(nn.Cell):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = Parameter(Tensor(np.ones(dim, np.float32)), name="weight")
        self.eps = eps

    def construct(self, x):
        x32 = ops.cast(x, ms.float32)
        var = ops.mean(x32 * x32, -1, keep_dims=True)
        return ops.cast(x32 * ops.rsqrt(var + self.eps), x.dtype) * ops.cast(self.weight, x.dtype)


class Embedding(nn.Cell):
    """Token embedding [vocab, dim], Parameter named `weight` (HF's name)."""

    def __init__(self, vocab, dim):
        super().__init__()
        self.weight = Parameter(Tensor(np.random.normal(0, 0.02, (vocab, dim)).astype(np.float32)), name="weight")

    def construct(self, ids):
        return ops.gather(self.weight, ids, 0)


def _rotate_half(x):
    half = x.shape[-1] // 2
    return ops.concat((-x[..., half:], x[..., :half]), -1)


class LlamaAttention(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.n_heads, self.n_kv, self.hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        d = cfg.hidden_size
        self.q_proj = nn.Dense(d, self.n_heads * self.hd, has_bias=False)
        self.k_proj = nn.Dense(d, self.n_kv * self.hd, has_bias=False)
        self.v_proj = nn.Dense(d, self.n_kv * self.hd, has_bias=False)
        self.o_proj = nn.Dense(self.n_heads * self.hd, d, has_bias=False)
        self.scale = 1.0 / math.sqrt(self.hd)

    def construct(self, x, cos, sin, mask, cache_k=None, cache_v=None, onehot=None):
        """x [B, T, dim]; cos, sin [T, hd]; mask [T, S] additive. Without a cache S = T. With one:
        cache_k/v [B, kv, L, hd] (L = the context length) and onehot [T, L] float32 placing the T
        new positions: k = cache_k·(1 - Σ onehot) + onehotᵀ·k_new (static shapes, so a compiled
        step serves every position). Returns (out [B, T, dim], k, v [B, kv, S, hd])."""
        b, t, _ = x.shape
        q = self.q_proj(x).reshape(b, t, self.n_heads, self.hd).transpose(0, 2, 1, 3)
        k = self.k_proj(x).reshape(b, t, self.n_kv, self.hd).transpose(0, 2, 1, 3)
        v = self.v_proj(x).reshape(b, t, self.n_kv, self.hd).transpose(0, 2, 1, 3)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        if cache_k is not None:
            keep = (1.0 - onehot.sum(0)).reshape(1, 1, -1, 1)
            place = onehot.T
            k = cache_k * keep + ops.matmul(place, ops.cast(k, ms.float32))
            v = cache_v * keep + ops.matmul(place, ops.cast(v, ms.float32))
        rep = self.n_heads // self.n_kv
        kr = ops.repeat_interleave(k, rep, 1) if rep > 1 else k
        vr = ops.repeat_interleave(v, rep, 1) if rep > 1 else v
        scores = ops.matmul(ops.cast(q, ms.float32), ops.cast(kr, ms.float32).transpose(0, 1, 3, 2)) * self.scale
        p = ops.softmax(scores + mask, -1)
        out = ops.matmul(ops.cast(p, x.dtype), ops.cast(vr, x.dtype)).transpose(0, 2, 1, 3)
        return self.o_proj(out.reshape(b, t, self.n_heads * self.hd)), k, v


class LlamaMLP(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        d, h = cfg.hidden_size, cfg.intermediate_size
        self.gate_proj = nn.Dense(d, h, has_bias=False)
        self.up_proj = nn.Dense(d, h, has_bias=False)
        self.down_proj = nn.Dense(h, d, has_bias=False)

    def construct(self, x):
        return self.down_proj(ops.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = LlamaAttention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = LlamaMLP(cfg)

    def construct(self, x, cos, sin, mask, cache_k=None, cache_v=None, onehot=None):
        a, k, v = self.self_attn(self.input_layernorm(x), cos, sin, mask, cache_k, cache_v, onehot)
        x = x + a
        return x + self.mlp(self.post_attention_layernorm(x)), k, v


class LlamaModel(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.CellList([LlamaDecoderLayer(cfg) for _ in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class LlamaForCausalLM(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.model = LlamaModel(cfg)
        self.tied = cfg.tie_word_embeddings
        if not self.tied:
            self.lm_head = nn.Dense(cfg.hidden_size, cfg.vocab_size, has_bias=False)
        # RoPE tables [max_pos, hd] (HF: frequencies repeated over the two halves)
        hd, n = cfg.head_dim, cfg.max_position_embeddings
        inv = 1.0 / (cfg.rope_theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
        f = np.outer(np.arange(n, dtype=np.float64), inv)
        f = np.concatenate([f, f], -1)
        self.cos_table = Tensor(np.cos(f).astype(np.float32))
        self.sin_table = Tensor(np.sin(f).astype(np.float32))
        self.mask_table = Tensor(np.triu(np.full((n, n), -1e30, np.float32), 1))

    # ------------------------------------------------------------------ compute
    def _logits(self, h):
        h = self.model.norm(h)
        if self.tied:
            return ops.matmul(ops.cast(h, ms.float32), self.model.embed_tokens.weight.T)
        return ops.cast(self.lm_head(h), ms.float32)

    def construct(self, ids):
        """ids [B, T] -> logits [B, T, vocab] (positions 0..T-1, causal)."""
        t = ids.shape[1]
        cos, sin = self.cos_table[:t], self.sin_table[:t]
        mask = self.mask_table[:t, :t]
        h = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            h, _, _ = layer(h, cos, sin, mask)
        return self._logits(h)

    @with_op_errors
    def __call__(self, *args, **kwargs):
        return super().__call__(*args, **kwargs)

    @with_op_errors
    def generate(self, prompt_ids, max_new_tokens=64, temperature=0.0, seed=0, stop_at_eos=False):
        """Greedy (temperature 0) or sampled continuation of prompt_ids (a list of ints, BOS
        included). Returns prompt + new ids (a list). One compiled decoding step (static shapes,
        a KV cache of the full context) runs every position, the prompt's included."""
        ids = [int(i) for i in prompt_ids]
        if not ids:
            raise ValueError("generate: the prompt needs at least one token (BOS)")
        L = self.config.max_position_embeddings
        if len(ids) > L:
            raise ValueError(f"generate: prompt of {len(ids)} tokens exceeds the context of {L}")
        step = self._msbnb_graph("_decode_step", _DecodeStep)
        cfg = self.config
        zeros = np.zeros((1, cfg.num_key_value_heads, L, cfg.head_dim), np.float32)
        ks = tuple(Tensor(zeros) for _ in self.model.layers)
        vs = tuple(Tensor(zeros) for _ in self.model.layers)
        rng = np.random.default_rng(seed)
        logits = None
        for pos, tok in enumerate(ids):
            logits, ks, vs = step(Tensor(np.array([[tok]], np.int32)), Tensor(np.int32(pos)), ms.mutable(ks),
                                  ms.mutable(vs))
        while len(ids) - len(prompt_ids) < max_new_tokens and len(ids) < L:
            last = logits.asnumpy()[0].astype(np.float64)
            if temperature > 0:
                p = np.exp((last - last.max()) / temperature)
                nxt = int(rng.choice(len(p), p=p / p.sum()))
            else:
                nxt = int(np.argmax(last))
            ids.append(nxt)
            if (stop_at_eos and nxt == cfg.eos_token_id) or len(ids) - len(prompt_ids) >= max_new_tokens:
                break
            logits, ks, vs = step(Tensor(np.array([[nxt]], np.int32)), Tensor(np.int32(len(ids) - 1)),
                                  ms.mutable(ks), ms.mutable(vs))  # mutable: variables, not constants
        return ids

    def _msbnb_graph(self, attr, cls):
        """A compiled wrapper kept while the model's structure (its Cells, its adapters) is unchanged:
        converting layers or adding adapters afterwards gets a new one (a new compilation). In
        PyNative also while no Parameter got new data: there an ms.jit graph keeps computing with
        the buffers it first ran with after Parameter.set_data (load_checkpoint, set_adapter,
        merge...), where a GRAPH_MODE network follows the new values."""
        sig = tuple(id(c) for _, c in self.cells_and_names())
        if ms.get_context("mode") == ms.PYNATIVE_MODE:
            sig += tuple(p.data_ptr() for p in self.get_parameters())
        cached = getattr(self, attr, None)
        if cached is None or cached[0] != sig:
            cached = (sig, cls(self))
            object.__setattr__(self, attr, cached)
        return cached[1]

    @with_op_errors
    def sequence_logits(self, ids):
        """float32 numpy logits [T, vocab] of one sequence (a list of ids), from a compiled forward
        over the sequence padded to the full context (one compilation serves every length; the
        padding comes after the scored positions, so causality leaves them unchanged)."""
        L = self.config.max_position_embeddings
        ids = [int(i) for i in ids]
        if not 1 <= len(ids) <= L:
            raise ValueError(f"sequence of {len(ids)} tokens: must be 1..{L}")
        padded = np.zeros((1, L), np.int32)
        padded[0, : len(ids)] = ids
        return self._msbnb_graph("_jit_forward", _FullForward)(Tensor(padded)).asnumpy()[0, : len(ids)]

    def nll(self, ids):
        """Summed negative log-likelihood (nats, float64) of ids[1:] given the prefix, and the count."""
        logits = self.sequence_logits(ids).astype(np.float64)
        mx = logits.max(-1, keepdims=True)
        lse = (np.log(np.exp(logits - mx).sum(-1, keepdims=True)) + mx)[:, 0]
        tgt = np.asarray(ids[1:])
        return float((lse[:-1] - logits[np.arange(len(tgt)), tgt]).sum()), len(tgt)

    def perplexity(self, sequences):
        """(exp(mean NLL), mean NLL) over token sequences, each scored from its second token."""
        tot, n = 0.0, 0
        for s in sequences:
            a, c = self.nll(s)
            tot, n = tot + a, n + c
        return math.exp(tot / n), tot / n

    # ------------------------------------------------------------------ files
    @classmethod
    def from_pretrained(cls, path, **overrides):
        """Build from an HF directory (config.json + safetensors): plain weights go into the
        float layers; quantized ones (msbnb quantize / bitsandbytes / transformers) replace their
        layers by Linear4bit / Linear8bit holding the codes as stored."""
        from .io import load_hf_weights
        cfg = LlamaConfig.from_json(path)
        for k, v in overrides.items():
            setattr(cfg, k, v)
        model = cls(cfg)
        load_hf_weights(model, path)
        return model


class _DecodeStep(nn.Cell):
    """One compiled decoding step: ids [1, 1] at position pos (int32 scalar Tensor) over the KV
    caches (tuples of [1, kv, L, hd], one per layer). Returns (logits [1, vocab], caches)."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm
        self.L = lm.config.max_position_embeddings

    @ms.jit
    def construct(self, ids, pos, ks, vs):
        lm = self.lm
        t = ids.shape[1]
        positions = pos + ops.arange(t, dtype=ms.int32)
        cos = ops.gather(lm.cos_table, positions, 0)
        sin = ops.gather(lm.sin_table, positions, 0)
        keys = ops.arange(self.L, dtype=ms.int32)
        onehot = ops.cast(keys.reshape(1, -1) == positions.reshape(-1, 1), ms.float32)  # [T, L]
        mask = ops.select(keys.reshape(1, -1) <= positions.reshape(-1, 1), ops.zeros((t, self.L), ms.float32),
                          ops.full((t, self.L), -1e30, dtype=ms.float32))
        h = lm.model.embed_tokens(ids)
        new_k = ()
        new_v = ()
        i = 0
        for layer in lm.model.layers:
            h, k, v = layer(h, cos, sin, mask, ks[i], vs[i], onehot)
            new_k = new_k + (k,)
            new_v = new_v + (v,)
            i = i + 1
        return lm._logits(h)[:, -1], new_k, new_v


class _FullForward(nn.Cell):
    """The model's construct, compiled (ms.jit) whatever the context mode."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    @ms.jit
    def construct(self, ids):
        return self.lm(ids)


class CausalLMLoss(nn.Cell):
    """Mean next-token cross entropy of a causal LM over ids [B, T] (targets ids[:, 1:])."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    @with_op_errors
    def __call__(self, *args, **kwargs):
        return super().__call__(*args, **kwargs)

    def construct(self, ids):
        logits = self.model(ids[:, :-1])
        v = logits.shape[-1]
        return ops.cross_entropy(logits.reshape(-1, v), ids[:, 1:].reshape(-1).astype(ms.int32))

