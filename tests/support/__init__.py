"""Helpers that several test suites share (real local servers, not mocks)."""
