"""Grouping tasks by modality interaction, baseline groupings, and their bootstrap stability.

``group(Profiles.load("profiles.json"), method="mint")`` returns the groups.json as a
:class:`~mint.artifacts.Grouping`; ``route_tasks`` (:mod:`mint.clustering.route`) the routes.json of unseen
tasks as :class:`~mint.artifacts.Routes`.
"""

from mint.artifacts.profiles import ProfileSet, load_profiles, validate_profiles
from mint.clustering.group import group
from mint.clustering.methods import METHODS
from mint.vocabulary import interaction_of

__all__ = ["group", "load_profiles", "validate_profiles", "ProfileSet", "interaction_of", "METHODS"]
