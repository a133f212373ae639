"""mint: which multimodal instruction-tuning tasks should be trained together?

Profile tasks by how vision and text interact (MINT agreement score, partial information
decomposition), group them, and tune one LoRA adapter per group on a shared frozen backbone.

In a notebook, one verb per stage (:mod:`mint.api`), each taking and returning the stages' files as
objects (:mod:`mint.artifacts`)::

    import mint
    preds = mint.predict("builtin:mini", "tiny")
    profiles = mint.profile(preds)
    grouping = mint.group(profiles, "mint")
    mint.plot(profiles, grouping, out="figures")
    run = mint.tune(grouping, "runs/mint", suite="builtin:mini")
    evaluation = mint.evaluate(run)
    report = mint.report({"mint": evaluation}, "report")

The verbs and ``mint.Router`` are imported on first use, so ``import mint`` (and the CLI) stays light.
"""

__version__ = "0.1.0"
SCHEMA = 1

#: the notebook verbs, in pipeline order (mint.api)
VERBS = ("predict", "profile", "group", "plot", "tune", "evaluate", "report")

__all__ = ["__version__", "SCHEMA", "Router", *VERBS]


def __getattr__(name: str):
    """``mint.<verb>`` and ``mint.Router`` without importing torch at ``import mint`` (the CLI stays fast)."""
    if name in VERBS:
        from mint import api

        return getattr(api, name)
    if name == "Router":
        from mint.tuning.routing import Router

        return Router
    raise AttributeError(f"module 'mint' has no attribute {name!r}")
