"""The server thread: listeners, the door (accepting, logging in), one connection
per client, its bounded output, the conversations (monitor and console), and
the worker pool commands run in.

Everything here runs in the monitor's anyio thread, but for `_streams`, which
worker threads and the app's loop write to.  It never waits for the app's loop.
"""
