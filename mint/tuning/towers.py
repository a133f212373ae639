"""``--tower auto``: the tower that gets LoRA, per group, from the tasks' interaction profiles.

Each task votes from its profile (profiles.json, docs/design.md, file formats):

| interaction | dominant modality | tower |
|---|---|---|
| uniqueness | the image modality | ``vision`` (the answer is in the image: adapt the encoder that reads it) |
| uniqueness | the text modality | ``language`` |
| uniqueness | none (a tie) | ``both`` |
| synergy | | ``both`` (the answer needs the two modalities combined) |
| redundancy | | ``language`` (either modality suffices; the language tower already reads the projected image
  tokens, so the cheaper language-only adapter is enough) |

A group's tower is the majority of its tasks' votes; a tie between towers gives ``both``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mint.errors import MintError
from mint.io import read_json
from mint.vocabulary import INTERACTIONS

#: the tower of a redundancy-type task (documented choice, see the module docstring)
REDUNDANCY_TOWER = "language"


def load_profiles(path: str | Path) -> dict[str, Any]:
    """Read profiles.json (an error naming the file if it is missing or has no ``tasks`` object)."""
    path = Path(path)
    if not path.is_file():
        raise MintError(
            f"{path}: no such profiles file (--tower auto needs the tasks' profiles from mint profile)"
        )
    data = read_json(path, "profiles file")
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict):
        raise MintError(f"{path}: tasks: expected an object of task -> profile")
    return data


def modality_names(profiles: Mapping[str, Any]) -> tuple[str, str]:
    """(image name, text name): ``image``/``text`` unless the profiles' config names two other modalities
    (then the first is taken as the image side, the order of the predictions file)."""
    mods = (profiles.get("config") or {}).get("modalities")
    if isinstance(mods, list) and len(mods) == 2 and set(mods) != {"image", "text"}:
        return str(mods[0]), str(mods[1])
    return "image", "text"


def task_tower(
    profile: Mapping[str, Any], modalities: tuple[str, str] = ("image", "text"), where: str = "profile"
) -> str:
    """The tower one task's profile votes for."""
    if not isinstance(profile, Mapping):
        raise MintError(f"{where}: expected an object with 'interaction' and 'dominant_modality'")
    interaction = profile.get("interaction")
    if interaction not in INTERACTIONS:
        raise MintError(
            f"{where}: interaction: expected one of {', '.join(INTERACTIONS)}, got {interaction!r}"
        )
    if interaction == "synergy":
        return "both"
    if interaction == "redundancy":
        return REDUNDANCY_TOWER
    dominant = profile.get("dominant_modality")
    image, text = modalities
    if dominant == image:
        return "vision"
    if dominant == text:
        return "language"
    if dominant is None:
        return "both"
    raise MintError(f"{where}: dominant_modality: expected {image!r}, {text!r} or null, got {dominant!r}")


def majority_tower(votes: Sequence[str]) -> str:
    """The most frequent vote; a tie between the top votes gives ``both``."""
    if not votes:
        raise MintError("no tasks to choose a tower from")
    ranked = Counter(votes).most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return "both"
    return ranked[0][0]


def group_towers(
    groups: Mapping[str, Sequence[str]], profiles: Mapping[str, Any], source: str = "profiles.json"
) -> dict[str, str]:
    """``{group: tower}`` for ``{group: [task, ...]}`` from a profiles.json payload."""
    tasks = profiles.get("tasks")
    if not isinstance(tasks, Mapping):
        raise MintError(f"{source}: tasks: expected an object of task -> profile")
    mods = modality_names(profiles)
    out: dict[str, str] = {}
    for group, members in groups.items():
        votes = []
        for t in members:
            if t not in tasks:
                raise MintError(
                    f"{source}: tasks: no profile for task {t!r} (group {group!r}); profile the "
                    "same suite you tune"
                )
            votes.append(task_tower(tasks[t], mods, f"{source}: tasks.{t}"))
        out[group] = majority_tower(votes)
    return out
