"""The commands: the classic command loop, the one context commands read, and the
built-in, tracing and doctor commands.

Worker threads only.  Commands reach neither the server nor a connection: they
see a client through `_context.Client`, and render through `_render`.
"""
