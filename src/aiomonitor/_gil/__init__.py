"""The GIL etiquette: work over many items in short C-level passes with the GIL
offered between them, gentle frees, one heavy computation at a time (shared by
whoever asks together), and waking waiters one after another.

Imports nothing of aiomonitor: every wing, the backends included, may use it.
"""
