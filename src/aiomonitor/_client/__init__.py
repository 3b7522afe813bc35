"""The `aiomonitor` program: arguments, the interactive session, one telnet reader,
one command without a person (`-c`) and every monitor at once (`ls`, `--all`).

Runs in the client process and imports nothing of the monitor side: it talks
to monitors over sockets and finds them in the registry.  Of the package it may
import the registry and the pure text tables (`_render._table`) only.
"""
