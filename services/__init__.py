"""Reward services: one scorer per package, each served by services.common.create_app."""
