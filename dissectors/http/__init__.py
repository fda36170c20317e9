"""HTTP/1.1 as seen passively on a captured TCP connection (sans-IO, parsed by h11)."""
