"""Parallel and distributed analysis: flows sharded by a hash of their endpoints."""
