"""The web face: the options (imported without the `[web]` extra), the listener,
HTTP over h11, the routes and their parameters, Prometheus metrics and the
static page.  Another renderer over the query layer, beside the text commands.
"""
