"""Sans-I/O protocol code: no sockets, threads or event loops below this package."""
