"""Per-rank memory estimate of a training run, from the model's shapes alone (no weights, no torch).

``pte train --dry-run`` prints it, so a GPU user can size sub-batches before renting the GPU.
It is arithmetic on the config (layers, widths, heads, vocabulary) and the run's settings, for the
Llama/Qwen2/Mistral family the lean forward runs; what it assumes is returned beside the figures.
The peak is the frozen weights, the adapter's training state, and the largest of the three phases
that never overlap in a step (rollout, reference pass, replay with gradients):

- rollout: the bounded cache of ``rollout_sub_batch_size`` rows at its capacity (prompt + window,
  or prompt + max_new_tokens with the full cache), the prefill's widest activation, sampling logits;
- reference (when beta > 0): a full-cache pass over prompt + completion for
  ``reference_sub_batch_size`` rows;
- replay: ``replay_sub_batch_size`` rows, each keeping the saved activations of every token still
  in its cache plus one chunk (``window`` mode; ``exact`` keeps the whole completion), and the
  head's ``[chunk x vocab]`` log-softmax.

Checked against a measured peak on CPU (see docs/benchmarks.md); a GPU run records
``cuda_max_memory_allocated`` to compare (benchmarks/gpu_check.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

GIB = 1 << 30


@dataclass(frozen=True)
class ModelShape:
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool
    qkv_bias: bool

    @classmethod
    def from_config(cls, cfg: dict) -> ModelShape:
        try:
            hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
            return cls(layers=int(cfg["num_hidden_layers"]), hidden=hidden,
                       intermediate=int(cfg["intermediate_size"]), heads=heads,
                       kv_heads=int(cfg.get("num_key_value_heads") or heads),
                       head_dim=int(cfg.get("head_dim") or hidden // heads), vocab=int(cfg["vocab_size"]),
                       tied_embeddings=bool(cfg.get("tie_word_embeddings", False)),
                       qkv_bias=bool(cfg.get("attention_bias", cfg.get("model_type") == "qwen2")))
        except KeyError as err:
            raise ValueError(f"the model config has no {err.args[0]!r}: not a Llama-family decoder") from None

    def linears(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each projection of one block, by module name."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return {"q_proj": (self.hidden, q), "k_proj": (self.hidden, kv), "v_proj": (self.hidden, kv),
                "o_proj": (q, self.hidden), "gate_proj": (self.hidden, self.intermediate),
                "up_proj": (self.hidden, self.intermediate), "down_proj": (self.intermediate, self.hidden)}

    def parameters(self) -> int:
        block = sum(i * o for i, o in self.linears().values()) + 2 * self.hidden
        if self.qkv_bias:
            block += (self.heads + 2 * self.kv_heads) * self.head_dim
        embed = self.vocab * self.hidden
        return self.layers * block + embed * (1 if self.tied_embeddings else 2) + self.hidden


def _gguf_config(path: Path) -> dict:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    fields = reader.fields
    arch = fields["general.architecture"].contents()

    def get(key, default=None):
        return fields[key].contents() if key in fields else default

    heads = get(f"{arch}.attention.head_count")
    hidden = get(f"{arch}.embedding_length")
    return {"model_type": arch, "num_hidden_layers": get(f"{arch}.block_count"), "hidden_size": hidden,
            "intermediate_size": get(f"{arch}.feed_forward_length"), "num_attention_heads": heads,
            "num_key_value_heads": get(f"{arch}.attention.head_count_kv", heads),
            "head_dim": get(f"{arch}.attention.key_length", hidden // heads),
            "vocab_size": get(f"{arch}.vocab_size") or len(fields["tokenizer.ggml.tokens"].data),
            # GGUF drops the output matrix when it is the embedding
            "tie_word_embeddings": "output.weight" not in {t.name for t in reader.tensors}}


@lru_cache(maxsize=8)
def model_shape(spec: str) -> ModelShape:
    """Shapes of a ``--model`` value: a transformers folder (config.json), a .gguf file, a built-in
    name or a hub id in the local cache. Raises ValueError when the config cannot be read."""
    from .backends import ModelNotFound, resolve_model

    try:
        folder, gguf = resolve_model(spec)
    except ModelNotFound as err:
        raise ValueError(str(err)) from None
    if gguf:
        return ModelShape.from_config(_gguf_config(Path(folder) / gguf))
    path = Path(folder) / "config.json"
    if not path.is_file():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(folder, "config.json")
        except Exception:  # noqa: BLE001 - any failure means: not in the local cache
            cached = None
        if not isinstance(cached, str):
            raise ValueError(f"{spec}: no config.json in the local hub cache")
        path = Path(cached)
    return ModelShape.from_config(json.loads(path.read_text(encoding="utf-8")))


def adapter_parameters(shape: ModelShape, targets: list[str] | str, rank: int, global_tokens: int,
                       encoder: str) -> int:
    """Trainable parameters: LoRA ``B`` (r x in) and ``A`` (out x G) per adapted projection, and the
    progressive / global-only encoder's global tokens and its three latent projections per layer."""
    linears, names = shape.linears(), _adapted(shape, targets)
    lora = sum(rank * linears[n][0] + linears[n][1] * global_tokens for n in names)
    enc = 0
    if encoder in ("progressive", "global-only"):
        q_out, kv_out = linears["q_proj"][1], linears["k_proj"][1]
        enc = global_tokens * shape.hidden + rank * (q_out + 2 * kv_out)
    return shape.layers * (lora + enc)


def _adapted(shape: ModelShape, targets: list[str] | str) -> list[str]:
    linears = shape.linears()
    return list(linears) if targets == "all-linear" else [n for n in linears if any(n.endswith(t) for t in targets)]


def saved_bytes_per_token(shape: ModelShape, targets: list[str] | str, rank: int, global_tokens: int,
                          dtype_bytes: int) -> int:
    """Bytes autograd keeps per token and layer for the backward of a replay pass (frozen base).

    In the base dtype: the two norms' inputs and outputs, q, k and v, and the gated MLP's gate and up outputs
    (the frozen weights need no inputs; the adapters' inputs are the norm outputs, the attention
    output for o_proj, the MLP product for down_proj). The adapters run in fp32: their factors'
    outputs, and, under a 16-bit base, the norms' fp32 path and fp32 copies of the adapters'
    inputs: one of the hidden width for q/k/v/gate/up (as measured) and one each for o_proj's and
    down_proj's inputs. Checked against autograd's saved tensors (saved_tensors_hooks) on tiny
    configs in fp32 and bf16: packages/pte-rl/tests/test_estimate.py."""
    h, inter = shape.hidden, shape.intermediate
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    linears, names = shape.linears(), _adapted(shape, targets)
    out = (4 * h + q + 2 * kv + 2 * inter) * dtype_bytes + len(names) * (rank + global_tokens) * 4
    if "o_proj" in names:
        out += q * dtype_bytes
    if "down_proj" in names:
        out += inter * dtype_bytes
    if dtype_bytes != 4:
        own_input = ("o_proj", "down_proj")
        out += 2 * h * 4 + (h * 4 if any(n not in own_input for n in names) else 0)
        out += sum(linears[n][0] * 4 for n in names if n in own_input)
    return out


def estimate_memory(shape: ModelShape, *, dtype_bytes: int, prompt_tokens: int, capacity: int,
                    max_new_tokens: int, rollout_rows: int, reference_rows: int, replay_rows: int,
                    replay_chunk: int, replay_graph: str, beta: float, targets: list[str] | str,
                    rank: int, global_tokens: int, encoder: str) -> dict:
    """GiB per component and the peak, per rank (see the module docstring for the model)."""
    L, inter = shape.layers, shape.intermediate
    kv = shape.kv_heads * shape.head_dim
    adapter_params = adapter_parameters(shape, targets, rank, global_tokens, encoder)
    kv_token = L * 2 * kv * dtype_bytes  # K and V of one token, all layers
    full = prompt_tokens + max_new_tokens
    saved = saved_bytes_per_token(shape, targets, rank, global_tokens, dtype_bytes)
    logits_row = shape.vocab * 4  # fp32 log-softmax over the vocabulary
    live = full if replay_graph == "exact" else min(capacity, full) + replay_chunk
    phases = {
        "rollout": rollout_rows * (capacity * kv_token + prompt_tokens * 3 * inter * dtype_bytes
                                   + 2 * logits_row),
        "reference": 0 if beta == 0 else reference_rows * (full * kv_token + full * 3 * inter * dtype_bytes
                                                           + replay_chunk * 2 * logits_row),
        # each live token: its saved activations, its K/V in the cache and their gradient buffers
        "replay": replay_rows * (live * (L * saved + 2 * kv_token) + replay_chunk * 2 * logits_row),
    }
    fixed = {"weights": shape.parameters() * dtype_bytes,
             "adapter_and_optimizer": adapter_params * 4 * 4}  # fp32 value, grad, Adam m and v
    peak_phase = max(phases, key=phases.get)
    out = {k: round(v / GIB, 2) for k, v in {**fixed, **phases}.items()}
    out.update(peak_gib=round((sum(fixed.values()) + phases[peak_phase]) / GIB, 2), peak_phase=peak_phase,
               base_parameters=shape.parameters(), adapter_parameters=adapter_params,
               assumed={"prompt_tokens": prompt_tokens, "cache_capacity": capacity, "base_dtype_bytes": dtype_bytes},
               shape=asdict(shape))
    return out
