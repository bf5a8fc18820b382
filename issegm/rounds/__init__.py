"""A CBST self-training run: the round loop (orchestrator), one phase of one round (phase: the
per-round script; phase_val with val_target, passes, report; phase_train), their settings
declared once (run_flags, declare, phase_settings; flags_doc writes docs/flags.md), the output
folder (layout), a round's health (health, health_thread, debug_grid), the figure (plot)."""
