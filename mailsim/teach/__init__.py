"""What the classroom notebooks need beyond the API: exercise checks and the step-through view.

The course (``notebooks/00-start-here`` .. ``08-trust``) asks the student questions whose
answers the simulation itself knows. An exercise is three cells: a markdown cell starting
``**Exercise``, a code cell where the student writes the answer (``answer = ...``), and a check
cell that calls one function of :mod:`mailsim.teach.exercises` and shows ``right`` or
``not yet, hint: ...``. The checks compute the expected value from a run, a trace or a message,
never from a string in the notebook.

The API, kept stable for everyone who writes a notebook:

- ``Verdict(right, hint)``: what a check returns; shown as ``right`` or ``not yet, hint: ...``
  (its ``repr``), true when right.
- Comparisons that make a Verdict, for writing new checks: ``close_to(answer, expected, *,
  tolerance, hint, unit="")`` for numbers, ``same(answer, expected, *, hint)`` for one value
  (texts without case), ``same_set(answer, expected, *, hint)`` for a collection in any order,
  ``same_mapping(answer, expected, *, hint)`` for a dict. Each treats the placeholder ``...``
  (and None) as "not answered yet" with a hint saying so.
- ``mailsim.teach.exercises.<notebook>``: one module per notebook (``start_here``,
  ``meet_smtp``, ``journey``, ...), each with ``check_<what>(answer, ...)`` functions. A new
  check is a small function there: compute the expected value from its arguments (a Result,
  records, a message), then return one of the comparisons with a hint that says where to look.
- ``lookup``: questions about a trace in the notebooks' words: ``connection(result,
  client=, server=, port=)``, ``connections(...)``, ``lines(result, conn, side)``,
  ``reply_to(result, conn, "DATA")``, ``exchanges(result, conn)``, ``every`` and ``first``.
- ``by_hand``: a protocol machine without a network: ``type_line(server, "HELO usa.com")``,
  ``greeting(server)``, ``feed(server, raw_bytes)``, ``converse(client, server)``.
- ``step_through(records)`` (also ``Result.step_through()``): the step-through widget
  (:class:`~mailsim.teach.stepper.StepThrough`; its ``index`` trait selects the event, ``event``
  is the current record as a dict, ``next()``, ``previous()``, ``filter(node=, protocol=,
  connection=)``), or the :class:`EventTable` it degrades to without ipywidgets or a kernel.
"""

from __future__ import annotations

from mailsim.teach import by_hand, lookup
from mailsim.teach.checking import (
    PLACEHOLDER,
    Verdict,
    close_to,
    same,
    same_mapping,
    same_set,
)
from mailsim.teach.stepper import EventTable, step_through

__all__ = [
    "PLACEHOLDER",
    "EventTable",
    "Verdict",
    "by_hand",
    "close_to",
    "lookup",
    "same",
    "same_mapping",
    "same_set",
    "step_through",
]
