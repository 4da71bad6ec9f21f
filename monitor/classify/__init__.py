"""Classifier: is a news item a new government internet-control measure, which, where, how far.

Rules as data (rules.yaml, gazetteer.yaml) find actors, actions, objects and negative contexts
in one pass; a linear model over hashed n-grams and the rule flags turns them into a score.

May import: monitor's core modules only.
"""

from __future__ import annotations

from .assess import Classifier
from .corpus import CorpusError, LabeledExample, read_corpus
from .evaluate import cross_validate, evaluate, format_assessment, format_evaluation
from .model import TrainedModel, load_model, save_model
from .training import TrainingOptions, train

__all__ = [
    "Classifier",
    "CorpusError",
    "LabeledExample",
    "TrainedModel",
    "TrainingOptions",
    "cross_validate",
    "evaluate",
    "format_assessment",
    "format_evaluation",
    "load_model",
    "read_corpus",
    "save_model",
    "train",
]
