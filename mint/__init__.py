"""mint: which multimodal instruction-tuning tasks should be trained together?

Profile tasks by how vision and text interact (MINT agreement score, partial information
decomposition), group them, and tune one LoRA adapter per group on a shared frozen backbone.
"""

__version__ = "0.1.0"
SCHEMA = 1

__all__ = ["__version__", "SCHEMA"]
