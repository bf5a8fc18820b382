"""A CBST self-training run: the round loop (orchestrator), one phase of one round (phase: the
per-round script; phase_val, phase_train), their settings declared once (flags, declare,
settings), the output folder (layout), a round's health (health, health_thread, debug_grid) and
the rounds figure (plot). docs/internals.md, section 1."""
