"""The study spec: a YAML file (``_schema``), checked against the registries before anything runs (``_checker``),
resolved into the ``Study`` the engine samples and trains (``_study``)."""

from sweeplab.spec._checker import load_study, parse_study, url_problem
from sweeplab.spec._errors import SpecIssue, StudyError
from sweeplab.spec._schema import DEFAULT_STORAGE, DEFAULT_TRACKING_URI, StudySpec
from sweeplab.spec._space import MODEL_PARAM, Dimension
from sweeplab.spec._study import PLATFORM_METRICS, FinetunePlan, ModelPlan, Study, TrialPlan

__all__ = [
    "DEFAULT_STORAGE",
    "DEFAULT_TRACKING_URI",
    "MODEL_PARAM",
    "PLATFORM_METRICS",
    "Dimension",
    "FinetunePlan",
    "ModelPlan",
    "SpecIssue",
    "Study",
    "StudyError",
    "StudySpec",
    "TrialPlan",
    "load_study",
    "parse_study",
    "url_problem",
]
