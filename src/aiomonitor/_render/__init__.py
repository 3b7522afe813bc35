"""Query results as text and JSON: tables (one width rule), tasks, stacks, the
await tree, styles.  Pure: no I/O, no threads, no framework.
"""
