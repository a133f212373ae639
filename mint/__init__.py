"""mint: which multimodal instruction-tuning tasks should be trained together?

Profile tasks by how vision and text interact (MINT agreement score, partial information
decomposition), group them, and tune one LoRA adapter per group on a shared frozen backbone.
"""

__version__ = "0.1.0"
SCHEMA = 1

__all__ = ["__version__", "SCHEMA", "Router"]


def __getattr__(name: str):
    """``mint.Router`` without importing torch at ``import mint`` (the CLI stays fast)."""
    if name == "Router":
        from mint.tuning.routing import Router

        return Router
    raise AttributeError(f"module 'mint' has no attribute {name!r}")
