"""The files that pass between stages, as typed objects: each checks its file on :meth:`load` (one error
naming file, line and field), writes it atomically on :meth:`save`, carries its schema version and reads
through accessors. The JSON on disk is the documented format (docs/design.md, file formats).

=================  ==========================  =========================================
class              file                        written by
=================  ==========================  =========================================
``Profiles``       profiles.json               ``mint profile`` / :func:`mint.profile`
``Grouping``       groups.json                 ``mint cluster`` / :func:`mint.group`
``Predictions``    predictions JSONL (+ meta)  ``mint predict`` / :func:`mint.predict`
``TuneRun``        <run>/tune.json             ``mint tune`` / :func:`mint.tune`
``Evaluation``     <run>/eval.json             ``mint evaluate`` / :func:`mint.evaluate`
``Report``         report.json                 ``mint evaluate --baseline`` / :func:`mint.report`
``Routes``         routes.json                 ``mint route``
=================  ==========================  =========================================
"""

from mint.artifacts._base import Artifact, Where
from mint.artifacts.grouping import Grouping
from mint.artifacts.predictions import Predictions, PredictionSet, TaskPredictions
from mint.artifacts.profiles import Profiles, ProfileSet
from mint.artifacts.report import Report
from mint.artifacts.routes import Routes
from mint.artifacts.runs import Evaluation, TuneRun

__all__ = [
    "Artifact",
    "Evaluation",
    "Grouping",
    "PredictionSet",
    "Predictions",
    "ProfileSet",
    "Profiles",
    "Report",
    "Routes",
    "TaskPredictions",
    "TuneRun",
    "Where",
]
