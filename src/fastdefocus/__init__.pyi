from fastdefocus.apps import enhance as enhance, fuse as fuse, magnify as magnify
from fastdefocus.config import EstimatorConfig as EstimatorConfig
from fastdefocus.estimator import DefocusEstimator as DefocusEstimator, estimate as estimate
from fastdefocus.result import DefocusResult as DefocusResult
from fastdefocus.stages.filters import (box_filter as box_filter, extract_patches as extract_patches,
                                        guided_coefficients as guided_coefficients, guided_filter as guided_filter,
                                        iterative_guided_filter as iterative_guided_filter)

__version__: str
__all__: list[str]
