"""Fake provider services on 127.0.0.1 that record requests and play back scripted replies."""
