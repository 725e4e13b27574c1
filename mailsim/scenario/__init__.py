"""The scenario language: YAML scenarios validated into typed models.

``load_scenario(path_or_text)`` returns a :class:`Scenario` whose values are in SI base units
(seconds, bytes, bits per second), or raises :class:`ScenarioError` listing every problem as
``path:line:col: field.path: what is wrong; what is expected``. The language is documented for
teachers in ``docs/scenario-language.md``.
"""

from __future__ import annotations

from mailsim.scenario.errors import Problem, ScenarioError
from mailsim.scenario.loader import load_scenario, validate_file, validate_text
from mailsim.scenario.schema import Scenario
from mailsim.scenario.starter import STARTER_SCENARIO, starter_scenario

__all__ = [
    "STARTER_SCENARIO",
    "Problem",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "starter_scenario",
    "validate_file",
    "validate_text",
]
