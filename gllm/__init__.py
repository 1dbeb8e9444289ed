"""GLLM: one OpenAI-compatible endpoint in front of many LLM inference workers."""

__version__ = "0.2.0"

__all__ = ["__version__"]
