"""Grouping tasks by modality interaction, baseline groupings, and their bootstrap stability.

``group(load_profiles("profiles.json"), method="mint")`` returns the content of a groups.json.
"""

from mint.artifacts.profiles import ProfileSet, load_profiles, validate_profiles
from mint.clustering.group import group
from mint.clustering.methods import METHODS
from mint.vocabulary import interaction_of

__all__ = ["group", "load_profiles", "validate_profiles", "ProfileSet", "interaction_of", "METHODS"]
