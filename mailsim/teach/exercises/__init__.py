"""The checks of the course's exercises, one module per notebook.

Each ``check_<what>(answer, ...)`` computes the expected value from what it is given (a run's
Result, trace records, a message) and returns a :class:`~mailsim.teach.Verdict`. The modules:
``start_here`` (00), ``meet_smtp`` (01), ``journey`` (02), ``links_fail`` (03), ``giving_up``
(04), ``servers_say_no`` (05), ``seven_bit`` (06), ``push_pull`` (07), ``trust`` (08).
"""
