"""Grouping tasks by modality interaction, baseline groupings, and their bootstrap stability.

``group(load_profiles("profiles.json"), method="mint")`` returns the content of a groups.json.
"""

from mint.clustering.group import group
from mint.clustering.methods import METHODS
from mint.clustering.profiles import ProfileSet, interaction_of, load_profiles, validate_profiles

__all__ = ["group", "load_profiles", "validate_profiles", "ProfileSet", "interaction_of", "METHODS"]
