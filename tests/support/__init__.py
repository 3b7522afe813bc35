"""What the tests share: the raw client's helpers, apps run as processes, the web helpers, programs."""
