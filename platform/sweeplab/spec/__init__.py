"""The study spec: a YAML file, checked against the registries before anything runs."""

from sweeplab.spec._errors import SpecIssue, StudyError
from sweeplab.spec._schema import DEFAULT_STORAGE, DEFAULT_TRACKING_URI, StudySpec
from sweeplab.spec._space import MODEL_PARAM, Dimension
from sweeplab.spec._study import PLATFORM_METRICS, ModelPlan, Study, TrialPlan, load_study, parse_study

__all__ = [
    "DEFAULT_STORAGE",
    "DEFAULT_TRACKING_URI",
    "MODEL_PARAM",
    "PLATFORM_METRICS",
    "Dimension",
    "ModelPlan",
    "SpecIssue",
    "Study",
    "StudyError",
    "StudySpec",
    "TrialPlan",
    "load_study",
    "parse_study",
]
