"""Launchers: a monitor for a program that never asked for one.

``aiomonitor run`` (``_run``) and ``attach`` (``_attach``) start one;
``_autostart`` finds the program's event loop; ``_follow`` carries the
monitor into every process of a service.  Nothing is imported here: the
start-up hook of every process of a followed service imports this package.
"""
