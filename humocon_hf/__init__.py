"""humocon-hf: HuMoCon (human motion + video understanding through discovered concepts) for HuggingFace."""

__version__ = "0.1.0.dev0"
