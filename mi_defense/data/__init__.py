"""Datasets, preprocessing and splits: the first stage of the pipeline."""
from mi_defense.data.dataset import Dataset
from mi_defense.data.registry import REGISTRY, load_dataset
from mi_defense.data.split import Split, make_split, universe_masks
from mi_defense.data.transforms import Transform, default_transform_kind

__all__ = ["Dataset", "REGISTRY", "load_dataset", "Split", "make_split", "universe_masks", "Transform",
           "default_transform_kind"]
