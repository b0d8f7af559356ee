"""Readers of the routed topics: worklists, school feed, triage agenda, operations."""
