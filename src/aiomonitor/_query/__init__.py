"""The query layer: typed, immutable answers about the monitored app (task
selections and groups, task detail, the await tree, ended tasks, the blocked
loop, stalls, doctor's diagnosis), from the backend and the watchers.

No text, no telnet, no JSON, no sockets: renderers turn these into output.
"""
